"""Secret: a Secrets Manager secret that the stack references (Redis AUTH token, platform API key).

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. The value is never in a
spec, a diff, a report or a log: it is created only when the secret is absent, from an environment variable
or a file named in the spec (a relative path is relative to the manifest or overlay file that names it, so
huntazectl works from any directory); afterwards only metadata is read (ARN, versions, whether a current value
exists).
Rotation changes the value, never the spec, so the value is never drift.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from controller.errors import PermanentError
from controller.kinds.base import Context, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import batches, put_found
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import SpecModel, aws_name, max_chars

_SECRETS = "secret"
RECOVERY_WINDOW_DAYS = 7


class ValueFrom(SpecModel):
    env: str | None = None  # name of an environment variable holding the value
    file: str | None = None  # file holding the value, relative to the file declaring it (see `value_file`)

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueFrom:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


# Secrets Manager: 1..512 characters: letters, digits and '/', '_', '+', '=', '.', '@', '-'.
SECRET_NAME = aws_name("secret name", r"[A-Za-z0-9/_+=.@-]+", 512,
                       "letters, digits and '/', '_', '+', '=', '.', '@', '-'")


class SecretSpec(SpecModel):
    secret_name: Annotated[str, AfterValidator(SECRET_NAME)] | None = None  # defaults to metadata.name
    description: Annotated[str, AfterValidator(max_chars("description", 2048))] = ""
    kms_key_id: str | None = None
    value_from: ValueFrom
    tags: dict[str, str] = {}


def secret_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, SecretSpec)
    return spec.secret_name or manifest.metadata.name


def secret_value(manifest: Manifest) -> str:
    """The initial value, from the environment or a file: never from the spec text, never in an error."""
    source = spec_of(manifest, SecretSpec).value_from
    if source.env is not None:
        value = os.environ.get(source.env)
        if not value:
            where = manifest.where("spec.valueFrom.env")
            raise PermanentError(str(manifest.key), f"{where}: spec.valueFrom.env: set the environment variable "
                                 f"{source.env} to create the secret")
        return value
    where = manifest.where("spec.valueFrom.file")
    path = value_file(manifest)
    if not path.is_file():
        raise PermanentError(str(manifest.key), f"{where}: spec.valueFrom.file: no such file {path}; create it "
                             "or set the env var (spec.valueFrom.env) instead")
    return path.read_text(encoding="utf-8").rstrip("\n")


def value_file(manifest: Manifest) -> Path:
    """``valueFrom.file`` resolved: a relative path is relative to the directory of the file that declared it
    (the overlay's, when an overlay set it), never to the working directory, so huntazectl runs from anywhere."""
    given = Path(str(spec_of(manifest, SecretSpec).value_from.file))
    if given.is_absolute():
        return given
    declared_in = manifest.where("spec.valueFrom.file")
    directory = Path(declared_in.directory) if declared_in.directory else Path(declared_in.file).parent
    return Path(os.path.normpath(directory / given))


@register
class SecretHandler(Kind[SecretSpec]):
    kind = "Secret"
    value_output = "arn"  # what `valueFrom: {secretRef: NAME}` takes by default
    spec_model = SecretSpec
    not_found_codes = frozenset({"ResourceNotFoundException"})

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        return check_name(manifest, self.spec(manifest).secret_name, secret_name(manifest), SECRET_NAME, "secretName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        return {"description": spec.description, "kmsKeyId": spec.kms_key_id, "hasValue": True,
                "tags": desired_tags(manifest, ctx.stack, spec.tags)}

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """The tier's secrets from ListSecrets filtered by name (10 names a call; tags included)."""
        sm = ctx.client("secretsmanager")
        for batch in batches((secret_name(m) for m in manifests), 10):
            pages = sm.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": batch}])
            found = {meta["Name"]: meta for page in pages for meta in page.get("SecretList", [])}  # prefix matches
            put_found(ctx, _SECRETS, batch, found)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        prefetched, meta = ctx.prefetched.take(_SECRETS, secret_name(manifest))
        if prefetched:
            live = None if meta is None else self._live(meta, ctx, manifest.key)
        else:
            live = self._describe(secret_name(manifest), ctx, manifest.key)
        return None if live is None or live.fields.get("scheduledForDeletion") else live

    def _describe(self, name: str, ctx: Context, key: ResourceKey | None = None) -> LiveResource | None:
        meta = self.read_or_none(ctx.client("secretsmanager").describe_secret, SecretId=name)
        return None if meta is None else self._live(meta, ctx, key)

    def _live(self, meta: dict[str, Any], ctx: Context, key: ResourceKey | None = None) -> LiveResource:
        tags = user_tags(tags_from_list(meta.get("Tags")))
        # DescribeSecret says VersionIdsToStages; ListSecrets says SecretVersionsToStages.
        stages = meta.get("VersionIdsToStages") or meta.get("SecretVersionsToStages") or {}
        fields = {
            "description": meta.get("Description", ""),
            "kmsKeyId": meta.get("KmsKeyId"),
            "hasValue": any("AWSCURRENT" in s for s in stages.values()),
            "tags": tags,
        }
        if meta.get("DeletedDate"):
            fields["scheduledForDeletion"] = True
        name = meta["Name"]
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        outputs = {"arn": meta["ARN"], "name": name}
        return LiveResource(resolved, meta["ARN"], fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        sm = ctx.client("secretsmanager")
        name = secret_name(manifest)
        pending = self._describe(name, ctx, manifest.key)
        if pending is not None:  # scheduled for deletion: bring it back rather than fail on the name
            sm.restore_secret(SecretId=name)
            live = self._describe(name, ctx, manifest.key)
            assert live is not None
            return self.update(manifest, live, desired, ["description", "kmsKeyId", "tags"], ctx)
        extra = {"KmsKeyId": desired["kmsKeyId"]} if desired["kmsKeyId"] else {}
        made = sm.create_secret(Name=name, Description=desired["description"], SecretString=secret_value(manifest),
                                Tags=tags_to_list(desired["tags"]), **extra)
        outputs = {"arn": made["ARN"], "name": name}
        return LiveResource(manifest.key, made["ARN"], dict(desired), outputs, desired["tags"], True)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        sm = ctx.client("secretsmanager")
        arn = live.physical_id
        if "description" in changed or "kmsKeyId" in changed:
            extra = {"KmsKeyId": desired["kmsKeyId"]} if desired["kmsKeyId"] else {}
            sm.update_secret(SecretId=arn, Description=desired["description"], **extra)
        if "hasValue" in changed:
            sm.put_secret_value(SecretId=arn, SecretString=secret_value(manifest))
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                sm.tag_resource(SecretId=arn, Tags=tags_to_list(to_set))
            if to_remove:
                sm.untag_resource(SecretId=arn, TagKeys=to_remove)
        fields = {**live.fields, **{c: desired[c] for c in changed}}
        return LiveResource(live.key, arn, fields, live.outputs, desired["tags"], True)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        ctx.client("secretsmanager").delete_secret(SecretId=live.physical_id,
                                                   RecoveryWindowInDays=RECOVERY_WINDOW_DAYS)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        found = []
        for page in ctx.client("secretsmanager").get_paginator("list_secrets").paginate():
            for meta in page.get("SecretList", []):
                live = self._live(meta, ctx)
                if live.owned and not live.fields.get("scheduledForDeletion"):
                    found.append(live)
        return found

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return f"secret {live.outputs['name']}: its value and every version of it"
