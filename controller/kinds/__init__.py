"""Per-kind modules (one AWS resource type each) and the registry the reconciler looks them up in."""
