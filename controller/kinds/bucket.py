"""Bucket: an S3 bucket for scraper results, with encryption, versioning, lifecycle and public access block.

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. S3 reports "no such
configuration" errors for unset settings; those are normalized to the server defaults (since 2023 every
bucket is encrypted with SSE-S3 by default, so no encryption configuration means AES256, not drift).
A bucket with objects is never deleted: empty it first or mark it ``deletion-policy: retain``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from controller.errors import PermanentError
from controller.kinds.base import Context, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import tags_of
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import drop_none, sort_by, tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key
from controller.retrying import error_code
from controller.specs.fields import SpecModel, in_range

DEFAULT_ENCRYPTION = {"algorithm": "AES256", "kmsKeyId": None, "bucketKeyEnabled": False}
_ABSENT_CODES = ("NoSuchLifecycleConfiguration", "ServerSideEncryptionConfigurationNotFoundError",
                 "NoSuchPublicAccessBlockConfiguration", "NoSuchTagSet", "NoSuchTagSetError")
_EXISTS = "bucket-exists"
_BLOCK_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
Days = Annotated[int, AfterValidator(in_range(1, 36500))]


_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def bucket_rule(name: str) -> str:
    """S3's general purpose bucket naming rules, each refused with its own sentence."""
    if not 3 <= len(name) <= 63:
        raise ValueError(f"bucket name must be 3..63 characters (got {len(name)})")
    if not _BUCKET_CHARS.fullmatch(name):
        raise ValueError(f"bucket name {name!r} may contain only lowercase letters, digits, '.' and '-', and must "
                         "start and end with a letter or digit")
    if ".." in name or _IP_LIKE.fullmatch(name):
        raise ValueError(f"bucket name {name!r} must not hold '..' or look like an IP address")
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        raise ValueError(f"bucket name {name!r} uses a prefix or suffix S3 reserves "
                         f"({', '.join(_RESERVED_PREFIXES + _RESERVED_SUFFIXES)})")
    return name


class Encryption(SpecModel):
    algorithm: Literal["AES256", "aws:kms"] = "AES256"
    kms_key_id: str | None = None
    bucket_key_enabled: bool = False


class Transition(SpecModel):
    days: Days
    storage_class: Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER",
                           "DEEP_ARCHIVE"]

    @model_validator(mode="after")
    def _minimum_age(self) -> Transition:
        if self.storage_class in ("STANDARD_IA", "ONEZONE_IA") and self.days < 30:
            raise ValueError(f"S3 moves objects to {self.storage_class} after 30 days at the earliest")
        return self


class LifecycleRule(SpecModel):
    id: str = Field(min_length=1, max_length=255)
    prefix: str = ""
    enabled: bool = True
    expiration_days: Days | None = None
    noncurrent_version_expiration_days: Days | None = None
    abort_incomplete_multipart_upload_days: Days | None = None
    transitions: list[Transition] = []


class BucketSpec(SpecModel):
    bucket_name: Annotated[str, AfterValidator(bucket_rule)] | None = None  # defaults to metadata.name
    encryption: Encryption = Encryption()
    versioning: bool = False
    block_public_access: bool = True
    lifecycle: list[LifecycleRule] = Field(default_factory=list, max_length=1000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> BucketSpec:
        ids = [r.id for r in self.lifecycle]
        if len(ids) != len(set(ids)):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"lifecycle rule ids must be unique (repeated: {', '.join(repeated)})")
        return self


def bucket_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, BucketSpec)
    return spec.bucket_name or manifest.metadata.name


def _rule_fields(rule: LifecycleRule) -> dict[str, Any]:
    return {
        "id": rule.id, "prefix": rule.prefix, "enabled": rule.enabled, "expirationDays": rule.expiration_days,
        "noncurrentVersionExpirationDays": rule.noncurrent_version_expiration_days,
        "abortIncompleteMultipartUploadDays": rule.abort_incomplete_multipart_upload_days,
        "transitions": sort_by(({"days": t.days, "storageClass": t.storage_class} for t in rule.transitions), "days"),
    }


def _rule_from_api(rule: dict[str, Any]) -> dict[str, Any]:
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
    return {
        "id": rule.get("ID", ""), "prefix": prefix, "enabled": rule.get("Status") == "Enabled",
        "expirationDays": rule.get("Expiration", {}).get("Days"),
        "noncurrentVersionExpirationDays": rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
        "abortIncompleteMultipartUploadDays": rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
        "transitions": sort_by(({"days": t.get("Days"), "storageClass": t.get("StorageClass")}
                                for t in rule.get("Transitions", [])), "days"),
    }


def _rule_to_api(rule: dict[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = drop_none({
        "ID": rule["id"], "Filter": {"Prefix": rule["prefix"]}, "Status": "Enabled" if rule["enabled"] else "Disabled",
        "Expiration": {"Days": rule["expirationDays"]} if rule["expirationDays"] else None,
        "NoncurrentVersionExpiration": {"NoncurrentDays": rule["noncurrentVersionExpirationDays"]}
        if rule["noncurrentVersionExpirationDays"] else None,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": rule["abortIncompleteMultipartUploadDays"]}
        if rule["abortIncompleteMultipartUploadDays"] else None,
        "Transitions": [{"Days": t["days"], "StorageClass": t["storageClass"]} for t in rule["transitions"]] or None,
    })
    return api


def _optional(call: Any, default: Any, **kwargs: Any) -> Any:
    """An S3 read whose "not configured" error means the server default."""
    try:
        return call(**kwargs)
    except Exception as exc:
        if error_code(exc) in _ABSENT_CODES:
            return default
        raise


@register
class BucketHandler(Kind[BucketSpec]):
    kind = "Bucket"
    value_output = "name"  # what `valueFrom: {bucketRef: NAME}` takes by default
    spec_model = BucketSpec
    not_found_codes = frozenset({"404", "NoSuchBucket", "NotFound"})

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        spec = self.spec(manifest)
        return check_name(manifest, spec.bucket_name, bucket_name(manifest), bucket_rule, "bucketName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        enc = spec.encryption
        return {
            "encryption": {"algorithm": enc.algorithm, "kmsKeyId": enc.kms_key_id,
                           "bucketKeyEnabled": enc.bucket_key_enabled},
            "versioning": spec.versioning,
            "blockPublicAccess": spec.block_public_access,
            "lifecycle": sort_by((_rule_fields(r) for r in spec.lifecycle), "id"),
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """Which buckets of the tier exist in this account, from one ListBuckets (instead of a HeadBucket each)."""
        mine = {b["Name"] for b in ctx.client("s3").list_buckets().get("Buckets", [])}
        for manifest in manifests:
            name = bucket_name(manifest)
            if name in mine:  # a name missing here may still be taken by another account: HeadBucket says so
                ctx.prefetched.put(_EXISTS, name, True)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        name = bucket_name(manifest)
        exists, _ = ctx.prefetched.take(_EXISTS, name)
        if not exists:
            try:
                ctx.client("s3").head_bucket(Bucket=name)
            except Exception as exc:
                if self.is_not_found(exc):
                    return None
                if error_code(exc) in ("403", "AccessDenied"):
                    raise PermanentError(
                        str(manifest.key), f"bucket {name} exists in another account: pick another name"
                    ) from None
                raise
        return self._live(name, ctx, manifest.key)

    def _tags(self, name: str, ctx: Context) -> dict[str, str]:
        cached = tags_of(ctx, f"arn:aws:s3:::{name}")
        if cached is not None:
            return user_tags(cached)
        tagging = _optional(ctx.client("s3").get_bucket_tagging, {}, Bucket=name)
        return user_tags(tags_from_list(tagging.get("TagSet")))

    def _live(self, name: str, ctx: Context, key: ResourceKey | None = None, tags: dict[str, str] | None = None
              ) -> LiveResource:
        s3 = ctx.client("s3")
        tags = self._tags(name, ctx) if tags is None else tags
        enc = _optional(s3.get_bucket_encryption, {}, Bucket=name)
        rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        encryption = dict(DEFAULT_ENCRYPTION)
        if rules:
            default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
            encryption = {"algorithm": default.get("SSEAlgorithm", "AES256"),
                          "kmsKeyId": default.get("KMSMasterKeyID"),
                          "bucketKeyEnabled": bool(rules[0].get("BucketKeyEnabled", False))}
        lifecycle = _optional(s3.get_bucket_lifecycle_configuration, {}, Bucket=name).get("Rules", [])
        block = _optional(s3.get_public_access_block, {}, Bucket=name).get("PublicAccessBlockConfiguration", {})
        fields = {
            "encryption": encryption,
            "versioning": s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled",
            "blockPublicAccess": all(block.get(k, False) for k in _BLOCK_KEYS),
            "lifecycle": sort_by((_rule_from_api(r) for r in lifecycle), "id"),
            "tags": tags,
        }
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        outputs = {"arn": f"arn:aws:s3:::{name}", "name": name}
        return LiveResource(resolved, name, fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        name = bucket_name(manifest)
        extra = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
        ctx.client("s3").create_bucket(Bucket=name, **extra)
        live = LiveResource(manifest.key, name, {}, {"arn": f"arn:aws:s3:::{name}", "name": name}, {}, True)
        return self.update(manifest, live, desired, list(desired), ctx)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        s3 = ctx.client("s3")
        name = live.physical_id
        if "tags" in changed:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags_to_list(desired["tags"])})
        if "encryption" in changed:
            enc = desired["encryption"]
            default = drop_none({"SSEAlgorithm": enc["algorithm"], "KMSMasterKeyID": enc["kmsKeyId"]})
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": enc["bucketKeyEnabled"]}]})
        if "versioning" in changed and (desired["versioning"] or live.fields.get("versioning")):
            status = "Enabled" if desired["versioning"] else "Suspended"
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        if "blockPublicAccess" in changed:
            flag = desired["blockPublicAccess"]
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(_BLOCK_KEYS, flag))
        if "lifecycle" in changed:
            if desired["lifecycle"]:
                rules = [_rule_to_api(r) for r in desired["lifecycle"]]
                s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
            elif live.fields.get("lifecycle"):
                s3.delete_bucket_lifecycle(Bucket=name)
        fields = {**live.fields, **{c: desired[c] for c in changed}}
        return LiveResource(live.key, name, fields, live.outputs, desired["tags"], True)

    def delete(self, live: LiveResource, ctx: Context) -> None:
        s3 = ctx.client("s3")
        count = s3.list_objects_v2(Bucket=live.physical_id, MaxKeys=1).get("KeyCount", 0)
        if count:
            raise PermanentError(str(live.key), f"bucket {live.physical_id} is not empty: empty it first, or set "
                                 "the annotation huntaze.io/deletion-policy: retain")
        s3.delete_bucket(Bucket=live.physical_id)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        found = []
        for bucket in ctx.client("s3").list_buckets().get("Buckets", []):
            tags = self._tags(bucket["Name"], ctx)
            if is_owned(tags, ctx.stack):
                found.append(self._live(bucket["Name"], ctx, tags=tags))
        return found

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        listing = ctx.client("s3").list_objects_v2(Bucket=live.physical_id, MaxKeys=1000)
        count = listing.get("KeyCount", 0)
        more = "+" if listing.get("IsTruncated") else ""
        return f"bucket {live.physical_id} and its {count}{more} objects"
