"""Compare the RBAC rules of the rendered Helm chart with the calls the controllers made.

Usage: rbac_evidence.py HELM CHART_DIR AUDIT_LOG [AUDIT_LOG...]   (called by scripts/rbac-evidence.sh)
       rbac_evidence.py HELM CHART_DIR --rules    (profile, rule id, grants: one rule a line)

Evidence: kube-apiserver audit events (JSON lines, Metadata level) of requests whose effective
user (the impersonated one, else the authenticated one) is a profile's ServiceAccount
`system:serviceaccount:<ns>:<name>`. The e2e harness (hush_testkit::chart) installs the chart once
per test with the test's key namespace as release namespace, so a namespaced call lands in one of
two scopes: the ServiceAccount's own namespace (`release`, where the chart's Roles apply) or any
other namespace (`other`); a call without a namespace is `cluster`.

Rules: the chart rendered with both controllers (the same --set values as
hush_testkit::chart::ChartProfile), keeping only Roles and ClusterRoles bound to the profile's
ServiceAccount: each controller's own identity. A Role grants its rules
in the release namespace; a ClusterRole bound by a ClusterRoleBinding grants them everywhere.

Differences (exit status 1):
  +  a call no rule allows (or that RBAC refused: a 403 "… cannot …");
  -  a rule entry (verb on group/resource[/subresource]) that no call used;
  =  a rule entry whose every use is also allowed by another rule entry (redundant).
"""

import collections
import json
import subprocess
import sys
import tempfile

import yaml

RELEASE = "hush-evidence"

# Same as hush_testkit::chart::ChartProfile (crates/testkit/src/chart.rs): the chart with both
# controllers, each under its own ServiceAccount; a profile's rules are those bound to its account.
BOTH = "controllers.sealed.enabled=true,controllers.external.enabled=true,sealed.shards=3,controllers.external.shards=3,controllers.external.refreshEndpoint.enabled=true"
PROFILES = {
    "sealed": ("sealed-secrets-controller", BOTH),
    "external": ("hush-external-controller", BOTH),
}


def render(helm, chart, values):
    with tempfile.TemporaryDirectory() as home:
        env = {
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
            "PATH": "/usr/bin:/bin",
        }
        out = subprocess.run(
            [helm, "template", RELEASE, chart, "--namespace", RELEASE, "--set", values],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if out.returncode != 0:
        sys.exit(f"helm template {chart} --set {values} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


class Entry:
    """One verb on one group/resource[/subresource] of one chart rule."""

    def __init__(self, rule_id, scope, group, resource, verb, names):
        self.rule_id = rule_id
        self.scope = scope  # "cluster": everywhere; "release": the release namespace only
        self.group = group
        self.resource = resource
        self.verb = verb
        self.names = names
        self.calls = 0
        self.sole = 0  # calls no other entry allows

    def allows(self, call):
        verb, group, resource, scope, name = call
        if self.scope == "release" and scope != "release":
            return False
        if self.group not in ("*", group) or self.resource not in ("*", resource):
            return False
        if self.verb not in ("*", verb):
            return False
        return not self.names or name in self.names

    def text(self):
        where = "in the release namespace" if self.scope == "release" else "cluster-wide"
        names = f" {self.names}" if self.names else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{names} {where} ({self.rule_id})"


def entries_for(documents, account):
    def rule_id(obj, index):
        name = obj["metadata"]["name"].replace(RELEASE, "{release}")
        return f"{obj['kind']}/{name}#{index}"

    roles = {(d["kind"], d["metadata"]["name"]): d for d in documents if d["kind"] in ("Role", "ClusterRole")}
    entries = []
    for binding in documents:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        bound = any(
            s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace") == RELEASE
            for s in binding.get("subjects") or []
        )
        if not bound:
            continue
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], ref["name"]))
        if role is None:
            sys.exit(f"{binding['kind']} {binding['metadata']['name']} refers to a missing {ref['kind']} {ref['name']}")
        scope = "cluster" if binding["kind"] == "ClusterRoleBinding" else "release"
        for index, rule in enumerate(role.get("rules") or []):
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        entries.append(
                            Entry(rule_id(role, index), scope, group, resource, verb, rule.get("resourceNames") or [])
                        )
    return entries


def calls_by_account(paths, accounts):
    """{account: {call: (count, denied)}} where call = (verb, group, resource[/sub], scope, name)."""
    found = {a: collections.Counter() for a in accounts}
    denied = {a: collections.Counter() for a in accounts}
    for path in paths:
        with open(path, encoding="utf-8") as log:
            for number, line in enumerate(log, 1):
                try:
                    event = json.loads(line)
                except ValueError:
                    sys.exit(f"{path}:{number}: not a JSON audit event")
                user = (event.get("impersonatedUser") or event.get("user") or {}).get("username", "")
                parts = user.split(":")
                if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"] or parts[3] not in accounts:
                    continue
                ref = event.get("objectRef")
                if not ref:
                    continue  # non-resource URLs (discovery, /version): allowed to everyone
                resource = ref.get("resource", "")
                if ref.get("subresource"):
                    resource += "/" + ref["subresource"]
                namespace = ref.get("namespace")
                scope = "cluster" if not namespace else ("release" if namespace == parts[2] else "other")
                call = (event.get("verb", ""), ref.get("apiGroup", ""), resource, scope, ref.get("name", ""))
                found[parts[3]][call] += 1
                # RBAC's refusal ("… cannot …"), not admission's (e.g. a terminating namespace).
                status = event.get("responseStatus") or {}
                if status.get("code") == 403 and " cannot " in status.get("message", ""):
                    denied[parts[3]][call] += 1
    return found, denied


def call_text(call):
    verb, group, resource, scope, name = call
    where = {"cluster": "cluster-wide", "release": "in the release namespace", "other": "in another namespace"}[scope]
    named = f" {name}" if name else ""
    return f"{verb} {group or 'core'}/{resource}{named} {where}"


def list_rules(helm, chart):
    """One line per chart rule bound to a profile: profile, rule id, what it grants."""
    for profile, (account, values) in PROFILES.items():
        seen = {}
        for e in entries_for(render(helm, chart, values), account):
            seen.setdefault(e.rule_id, set()).add(f"{e.verb} {e.group or 'core'}/{e.resource}")
        for rule_id, grants in seen.items():
            print(f"{profile}\t{rule_id}\t{', '.join(sorted(grants))}")
    return 0


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    helm, chart, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
    if logs == ["--rules"]:
        return list_rules(helm, chart)
    accounts = {account for account, _ in PROFILES.values()}
    found, denied = calls_by_account(logs, accounts)
    differences = 0
    for profile, (account, values) in PROFILES.items():
        entries = entries_for(render(helm, chart, values), account)
        calls = found[account]
        print(f"== {profile}: ServiceAccount {account}, {sum(calls.values())} calls, {len(entries)} rule entries")
        if not calls:
            print(f"+ no call at all from {account}: did the {profile} scenarios run as the chart's ServiceAccount?")
            differences += 1
            continue
        # Names only matter for rules with resourceNames; collapse the rest for the report.
        unallowed = collections.Counter()
        for call, count in sorted(calls.items()):
            allowing = [e for e in entries if e.allows(call)]
            for e in allowing:
                e.calls += count
                if len(allowing) == 1:
                    e.sole += count
            if not allowing or denied[account][call]:
                verb, group, resource, scope, name = call
                named = any(e.names for e in entries if e.group == group and e.resource == resource)
                unallowed[(verb, group, resource, scope, name if named else "")] += count
        for call, count in sorted(unallowed.items()):
            print(f"+ {call_text(call)}: {count} calls the chart does not allow")
            differences += 1
        for e in entries:
            if e.calls == 0:
                print(f"- {e.text()}: never used")
                differences += 1
            elif e.sole == 0:
                print(f"= {e.text()}: every one of its {e.calls} calls is also allowed by another rule")
                differences += 1
            else:
                print(f"  {e.text()}: {e.calls} calls")
    if differences:
        print(f"{differences} differences between the chart's RBAC and the observed calls")
        return 1
    print("the chart's RBAC equals the observed calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
