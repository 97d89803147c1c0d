"""Role: an IAM role with its trust policy, inline policies and attached managed policies.

Registered in `controller.kinds.registry`; called only by `controller.reconciler`. Policy documents are
compared semantically through `controller.normalize.policy_document` (IAM returns them URL-encoded, single
statements as dicts, single actions as strings). The path cannot change in place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from controller.kinds.base import Context, FieldPolicy, FieldRule, Kind, LiveResource, check_name, spec_of
from controller.kinds.prefetch import put_found
from controller.kinds.registry import register
from controller.model import Manifest, ResourceKey
from controller.normalize import policy_document, tags_from_list, tags_to_list, user_tags
from controller.ownership import desired_tags, is_owned, owned_key, tag_changes
from controller.specs.fields import ARN, SpecModel, aws_name, in_range, max_chars

_ROLES = "role"


# IAM: role names 1..64 and policy names 1..128 characters of letters, digits and '+=,.@_-'; a path starts and
# ends with '/' (1..512 characters of printable ASCII).
ROLE_NAME = aws_name("role name", r"[\w+=,.@-]+", 64, "letters, digits and '+', '=', ',', '.', '@', '_', '-'")
POLICY_NAME = aws_name("policy name", r"[\w+=,.@-]+", 128, "letters, digits and '+', '=', ',', '.', '@', '_', '-'")
IAM_PATH = aws_name("path", r"/|/[\x21-\x7E]*/", 512, "printable ASCII, starting and ending with '/'")


class RoleSpec(SpecModel):
    role_name: Annotated[str, AfterValidator(ROLE_NAME)] | None = None  # defaults to metadata.name
    path: Annotated[str, AfterValidator(IAM_PATH)] = "/"
    description: Annotated[str, AfterValidator(max_chars("description", 1000))] = ""
    # Shortcut: ["lambda.amazonaws.com"] → an sts:AssumeRole trust policy for those services acting for this
    # account only (aws:SourceAccount, the confused-deputy guard); assumeRolePolicy for anything else.
    trusted_services: list[str] = []
    assume_role_policy: dict[str, Any] | None = None
    inline_policies: dict[Annotated[str, AfterValidator(POLICY_NAME)], dict[str, Any]] = {}
    managed_policy_arns: list[ARN] = []
    max_session_duration: Annotated[int, AfterValidator(in_range(3600, 43200))] = 3600
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_trust_policy(self) -> RoleSpec:
        if bool(self.trusted_services) == bool(self.assume_role_policy):
            raise ValueError("give exactly one of trustedServices or assumeRolePolicy")
        for name, doc in self.inline_policies.items():
            try:
                policy_document(doc)
            except ValueError as exc:
                raise ValueError(f"inlinePolicies.{name}: {exc}") from None
        return self

    def trust_policy(self, account_id: str) -> dict[str, Any] | None:
        if self.assume_role_policy:
            return policy_document(self.assume_role_policy)
        statement = {"Effect": "Allow", "Principal": {"Service": self.trusted_services}, "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}}
        return policy_document({"Statement": [statement]})


def role_name(manifest: Manifest) -> str:
    spec = spec_of(manifest, RoleSpec)
    return spec.role_name or manifest.metadata.name


@register
class RoleHandler(Kind[RoleSpec]):
    kind = "Role"
    value_output = "arn"  # what `valueFrom: {roleRef: NAME}` takes by default
    spec_model = RoleSpec
    not_found_codes = frozenset({"NoSuchEntity", "NoSuchEntityException"})
    rules = {"path": FieldRule(FieldPolicy.IMMUTABLE, "IAM cannot change a role's path")}

    def check(self, manifest: Manifest, stack: Mapping[ResourceKey, Manifest]) -> list[tuple[str, str]]:
        return check_name(manifest, self.spec(manifest).role_name, role_name(manifest), ROLE_NAME, "roleName")

    def references(self, manifest: Manifest) -> list[ResourceKey]:
        return []

    def desired(self, manifest: Manifest, ctx: Context) -> dict[str, Any]:
        spec = self.spec(manifest)
        return {
            "path": spec.path,
            "description": spec.description,
            "maxSessionDuration": spec.max_session_duration,
            "assumeRolePolicy": spec.trust_policy(ctx.account_id),
            "inlinePolicies": {name: policy_document(doc) for name, doc in spec.inline_policies.items()},
            "managedPolicyArns": sorted(spec.managed_policy_arns),
            "tags": desired_tags(manifest, ctx.stack, spec.tags),
        }

    def prefetch(self, manifests: Sequence[Manifest], ctx: Context) -> None:
        """Every role of the tier from two paginated calls instead of four a role: GetAccountAuthorizationDetails
        (trust policy, inline and attached policies, tags) and ListRoles (description and session duration,
        which the first one does not return)."""
        wanted = {role_name(m) for m in manifests}
        iam = ctx.client("iam")
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["Role"], PaginationConfig={"PageSize": 1000}
        )
        found = {d["RoleName"]: d for page in pages for d in page.get("RoleDetailList", []) if d["RoleName"] in wanted}
        for page in iam.get_paginator("list_roles").paginate(PaginationConfig={"PageSize": 1000}):
            for role in page.get("Roles", []):
                if (detail := found.get(role["RoleName"])) is not None:
                    detail.update({k: role[k] for k in ("Description", "MaxSessionDuration") if k in role})
        put_found(ctx, _ROLES, wanted, found)

    def read(self, manifest: Manifest, ctx: Context) -> LiveResource | None:
        prefetched, detail = ctx.prefetched.take(_ROLES, role_name(manifest))
        if prefetched:
            return None if detail is None else self._live(detail, ctx, manifest.key)
        found = self.read_or_none(ctx.client("iam").get_role, RoleName=role_name(manifest))
        return None if found is None else self._live(found["Role"], ctx, manifest.key)

    def _live(self, role: dict[str, Any], ctx: Context, key: ResourceKey | None = None) -> LiveResource:
        """From GetRole (policies then listed) or a RoleDetailList entry (policies included)."""
        iam = ctx.client("iam")
        name = role["RoleName"]
        tags = user_tags(tags_from_list(role.get("Tags")))
        inline = {}
        attached = role.get("AttachedManagedPolicies")
        if "RolePolicyList" in role:
            inline = {p["PolicyName"]: policy_document(p["PolicyDocument"]) for p in role["RolePolicyList"]}
        else:
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy in page.get("PolicyNames", []):
                    doc = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                    inline[policy] = policy_document(doc)
        if attached is None:
            attached = iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])
        fields = {
            "path": role.get("Path", "/"),
            "description": role.get("Description", ""),
            "maxSessionDuration": role.get("MaxSessionDuration", 3600),
            "assumeRolePolicy": policy_document(role.get("AssumeRolePolicyDocument")),
            "inlinePolicies": inline,
            "managedPolicyArns": sorted(p["PolicyArn"] for p in attached),
            "tags": tags,
        }
        resolved = key or owned_key(tags) or ResourceKey(kind=self.kind, name=name)
        outputs = {"arn": role["Arn"], "name": name}
        return LiveResource(resolved, name, fields, outputs, tags, is_owned(tags, ctx.stack))

    def create(self, manifest: Manifest, desired: dict[str, Any], ctx: Context) -> LiveResource:
        iam = ctx.client("iam")
        name = role_name(manifest)
        role = iam.create_role(
            RoleName=name, Path=desired["path"], Description=desired["description"],
            AssumeRolePolicyDocument=json.dumps(desired["assumeRolePolicy"]),
            MaxSessionDuration=desired["maxSessionDuration"], Tags=tags_to_list(desired["tags"]),
        )["Role"]
        for policy, doc in desired["inlinePolicies"].items():
            iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(doc))
        for arn in desired["managedPolicyArns"]:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return LiveResource(manifest.key, name, dict(desired), {"arn": role["Arn"], "name": name},
                            desired["tags"], True)

    def update(
        self, manifest: Manifest, live: LiveResource, desired: dict[str, Any], changed: list[str], ctx: Context
    ) -> LiveResource:
        iam = ctx.client("iam")
        name = live.physical_id
        if "assumeRolePolicy" in changed:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(desired["assumeRolePolicy"]))
        if "description" in changed or "maxSessionDuration" in changed:
            iam.update_role(RoleName=name, Description=desired["description"],
                            MaxSessionDuration=desired["maxSessionDuration"])
        if "inlinePolicies" in changed:
            self._sync_inline(name, desired["inlinePolicies"], live.fields.get("inlinePolicies", {}), ctx)
        if "managedPolicyArns" in changed:
            have, want = set(live.fields.get("managedPolicyArns", [])), set(desired["managedPolicyArns"])
            for arn in sorted(have - want):
                iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            for arn in sorted(want - have):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        if "tags" in changed:
            to_set, to_remove = tag_changes(desired["tags"], live.tags)
            if to_set:
                iam.tag_role(RoleName=name, Tags=tags_to_list(to_set))
            if to_remove:
                iam.untag_role(RoleName=name, TagKeys=to_remove)
        fields = {**live.fields, **{c: desired[c] for c in changed}}
        return LiveResource(live.key, name, fields, live.outputs, desired["tags"], True)

    def _sync_inline(self, name: str, want: dict[str, Any], have: dict[str, Any], ctx: Context) -> None:
        iam = ctx.client("iam")
        for policy in sorted(set(have) - set(want)):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for policy, doc in sorted(want.items()):
            if have.get(policy) != doc:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(doc))

    def delete(self, live: LiveResource, ctx: Context) -> None:
        iam = ctx.client("iam")
        name = live.physical_id
        for policy in live.fields.get("inlinePolicies", {}):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for arn in live.fields.get("managedPolicyArns", []):
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        for profile in iam.list_instance_profiles_for_role(RoleName=name).get("InstanceProfiles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
        iam.delete_role(RoleName=name)

    def list_owned(self, ctx: Context) -> list[LiveResource]:
        iam = ctx.client("iam")
        found = []
        for page in iam.get_paginator("list_roles").paginate():
            for role in page.get("Roles", []):
                tags = tags_from_list(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"))
                if is_owned(tags, ctx.stack):
                    found.append(self._live({**role, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}, ctx))
        return found

    def replacement_impact(self, live: LiveResource, ctx: Context) -> str:
        return (f"role {live.physical_id}: every function or task using its ARN loses its permissions until it "
                "is recreated")
