"""Site adapters: the interface (`base`), the built-ins (`browser`, `http`) and the chooser (`registry`)."""
