"""Do the CloudFormation and the Terraform output deploy the same thing?

    python infra/parity.py [out/package]      # after `make package`

Both outputs are evaluated offline for one account, region and set of deploy-time
choices (infra/cfn.py, infra/hcl.py), and reduced to one inventory each: functions
(settings, environment, role), roles (trust and every statement, resources as
concrete ARNs), event source mappings, asynchronous invoke configs, invoke
permissions, EventBridge rules and targets, the account-level subscription policy,
and the parameters of the stateful resources (infra/resources.yaml, which Terraform
deploys as a stack of its own). Any difference is listed; tests/unit/test_terraform.py
requires none for every stage and scenario.

Known and intended differences are normalised, each with its reason, in `_normalise_*`:
CloudFormation generates EventBridge rule names (Terraform names them
sluice-<stage>-<function>), so rules are compared by their target; SAM tags functions
`lambda:createdBy`; Terraform's trust policy carries an empty Sid.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # infra/ holds scripts, not a package
import hcl
import terraform

INFRA = Path(__file__).resolve().parent
ENV = cfn.Account()
_ARN_BUCKETS = ["arn:aws:s3:::team-alb-logs", "arn:aws:s3:::team-vpc-flow"]

# Deploy-time choices, as Terraform variables; `cfn_parameters` gives the template's.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything": {
        "enable_kinesis": True,
        "source_bucket_arns": _ARN_BUCKETS,
        "forward_stream_arns": [ENV.arn("kinesis", "stream/team-siem")],
        "forward_firehose_arns": [ENV.arn("firehose", "deliverystream/team-lake")],
        "archive_kms_key_arn": ENV.arn("kms", "key/0a1b2c3d-aaaa-bbbb-cccc-1234567890ab"),
        "account_subscription": "kinesis",
        "kms_key": "create",
    },
    "account-policy-to-lambda": {"account_subscription": "lambda"},
    "own-kms-key": {"kms_key": ENV.arn("kms", "key/9f8e7d6c-aaaa-bbbb-cccc-1234567890ab")},
    # One Sluice for an organization: the destination admits it; no account list.
    "organization": {"enable_kinesis": True, "organization_id": "o-a1b2c3d4e5"},
    # Listed member accounts: the functions refuse CloudWatch data from any other.
    "member-accounts": {
        "enable_kinesis": True,
        "member_accounts": ["111111111111", "222222222222"],
    },
}


def cfn_parameters(variables: dict[str, Any]) -> dict[str, str]:
    """Terraform variable values as the template's parameter values."""
    out = {}
    for var, value in variables.items():
        param = terraform.PARAMETERS[var]
        if isinstance(value, bool):
            out[param] = "true" if value else "false"
        elif isinstance(value, list):
            out[param] = ",".join(value)
        else:
            out[param] = str(value)
    return out


# ---------------------------------------------------------------- normalising
def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _statement(st: dict[str, Any]) -> str:
    """One policy statement in a canonical, comparable form."""
    doc = {
        "Sid": st.get("Sid") or "",
        "Effect": st["Effect"],
        "Action": sorted(_as_list(st["Action"])),
        "Resource": sorted(_as_list(st.get("Resource", []))),
        "Principal": st.get("Principal"),
        "Condition": {
            test: {k: sorted(_as_list(v)) for k, v in pairs.items()}
            for test, pairs in (st.get("Condition") or {}).items()
        },
    }
    return json.dumps(doc, sort_keys=True)


def _statements(doc: Any) -> list[str]:
    if isinstance(doc, str):
        doc = json.loads(doc)
    return sorted(_statement(st) for st in _as_list(doc["Statement"]))


def _fn_name(ref: str) -> str:
    """A function given by name or ARN, as its name."""
    return ref.split(":function:", 1)[1].split(":")[0] if ":function:" in ref else ref


def _normalise_tags(tags: dict[str, str] | None) -> dict[str, str]:
    # SAM adds lambda:createdBy=SAM to every function it creates.
    return {k: v for k, v in (tags or {}).items() if k != "lambda:createdBy"}


# ---------------------------------------------------------------- CloudFormation
def sam_to_cloudformation(sam: dict[str, Any]) -> dict[str, Any]:
    """AWS SAM's own translation of the template (as CloudFormation would run it)."""
    import os

    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    sam = json.loads(json.dumps(sam))
    for r in sam["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", ENV.region)
    plain: dict[str, Any] = transform(sam, {}, NoManagedPolicies())
    return plain


def _on_failure(props: dict[str, Any]) -> str | None:
    dest: str | None = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return dest


def cfn_inventory(
    template: dict[str, Any], params: dict[str, str], resources_yaml: dict[str, Any]
) -> dict[str, Any]:
    """What the template deploys besides infra/resources.yaml's resources (`resources_yaml`,
    deployed by Terraform as a stack of its own), evaluated for `params`."""
    template = json.loads(json.dumps(template))
    own = set(resources_yaml["Resources"])
    res = template["Resources"]
    for r in res.values():
        if r["Type"] == "AWS::Events::Rule" and "Name" not in r["Properties"]:
            # CloudFormation generates the name; Terraform's is the target's name.
            target = r["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]
            r["Properties"]["Name"] = res[target]["Properties"]["FunctionName"]
    stack = cfn.Stack(template, params, ENV)
    inv: dict[str, Any] = {
        "stack-parameters": {
            k: v for k, v in stack.params.items() if k in resources_yaml["Parameters"]
        }
    }
    for lid, r in res.items():
        if lid in own or not stack.exists(lid):
            continue
        kind, p = r["Type"], stack.eval(r.get("Properties", {}))
        if kind == "AWS::Lambda::Function":
            inv[f"function {p['FunctionName']}"] = {
                "handler": p["Handler"],
                "runtime": p["Runtime"],
                "memory": p["MemorySize"],
                "timeout": p["Timeout"],
                "architectures": p.get("Architectures", ["x86_64"]),
                "environment": p["Environment"]["Variables"],
                "role": p["Role"],
                "reserved_concurrency": p.get("ReservedConcurrentExecutions"),
                "tags": _normalise_tags({t["Key"]: t["Value"] for t in p.get("Tags", [])}),
            }
        elif kind == "AWS::IAM::Role":
            inv[f"role {p['RoleName']}"] = {
                "trust": _statements(p["AssumeRolePolicyDocument"]),
                "statements": sorted(
                    s for pol in p.get("Policies", []) for s in _statements(pol["PolicyDocument"])
                ),
            }
        elif kind == "AWS::Lambda::EventSourceMapping":
            inv[f"event-source {_fn_name(p['FunctionName'])} {p['EventSourceArn']}"] = {
                "batch_size": p.get("BatchSize"),
                "starting_position": p.get("StartingPosition"),
                "batching_window": p.get("MaximumBatchingWindowInSeconds", 0),
                "response_types": p.get("FunctionResponseTypes", []),
                "bisect": p.get("BisectBatchOnFunctionError", False),
                "retries": p.get("MaximumRetryAttempts"),
                "parallelization": p.get("ParallelizationFactor"),
                "on_failure": _on_failure(p),
                "max_concurrency": p.get("ScalingConfig", {}).get("MaximumConcurrency"),
            }
        elif kind == "AWS::Lambda::EventInvokeConfig":
            inv[f"invoke-config {_fn_name(p['FunctionName'])}"] = {
                "retries": p.get("MaximumRetryAttempts"),
                "max_age": p.get("MaximumEventAgeInSeconds"),
                "on_failure": _on_failure(p),
            }
        elif kind == "AWS::Lambda::Permission":
            inv[f"permission {_fn_name(p['FunctionName'])} {p['Principal']}"] = {
                "action": p["Action"],
                "source_arn": p.get("SourceArn"),
                "source_account": p.get("SourceAccount"),
            }
        elif kind == "AWS::Events::Rule":
            targets = sorted(_fn_name(t["Arn"]) for t in p["Targets"])
            inv[f"rule to {','.join(targets)}"] = {
                "schedule": p.get("ScheduleExpression"),
                "pattern": p.get("EventPattern"),
                "state": p.get("State", "ENABLED"),
            }
        elif kind == "AWS::Logs::AccountPolicy":
            inv[f"account-policy {p['PolicyName']}"] = {
                "type": p["PolicyType"],
                "scope": p.get("Scope"),
                "selection": " ".join(p.get("SelectionCriteria", "").split()),
                "document": json.loads(p["PolicyDocument"]),
            }
        else:
            inv[f"unmatched {kind} {lid}"] = p
    return inv


def load_cfn(path: Path) -> dict[str, Any]:
    import package

    template: dict[str, Any] = package.load_cfn(path)
    return template


# ---------------------------------------------------------------- Terraform
def _tf_scope(
    docs: list[dict[str, Any]], variables: dict[str, Any], resources_yaml: dict[str, Any]
) -> dict[str, Any]:
    """What the outputs' expressions may reference, resources' attributes included."""
    var = {}
    for doc in docs:
        for name, spec in doc.get("variable", {}).items():
            var[name] = variables.get(name, spec.get("default"))
    unknown = set(variables) - set(var)
    if unknown:
        raise hcl.HclError(f"unknown variables {sorted(unknown)}")
    scope: dict[str, Any] = {
        "var": var,
        "path": {"module": "."},
        "data": {
            "aws_partition": {"chalice": {"partition": ENV.partition}},
            "aws_region": {"chalice": {"name": ENV.region}},
            "aws_caller_identity": {"chalice": {"account_id": ENV.account}},
        },
    }
    resources = _resources(docs)
    stack = resources["aws_cloudformation_stack"]["resources"]
    params = hcl.template(stack["parameters"], scope)
    resources_stack = cfn.Stack(resources_yaml, params, ENV)
    outputs = {
        name: resources_stack.eval(o["Value"])
        for name, o in resources_stack.template["Outputs"].items()
        if "Condition" not in o or resources_stack.condition(o["Condition"])
    }
    scope["aws_cloudformation_stack"] = {
        "resources": {"outputs": outputs, "parameters": params, "resolved": resources_stack.params}
    }

    def attrs(kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "aws_lambda_function":
            n = hcl.template(body["function_name"], scope)
            return {"function_name": n, "arn": ENV.arn("lambda", f"function:{n}")}
        if kind == "aws_iam_role":
            n = hcl.template(body["name"], scope)
            arn = f"arn:{ENV.partition}:iam::{ENV.account}:role/{n}"
            return {"name": n, "id": n, "arn": arn}
        n = hcl.template(body["name"], scope)
        return {"name": n, "id": n, "arn": ENV.arn("events", f"rule/{n}")}

    for kind in ("aws_lambda_function", "aws_iam_role", "aws_cloudwatch_event_rule"):
        table = scope.setdefault(kind, {})
        for name, body in resources.get(kind, {}).items():
            a = attrs(kind, name, body)
            table[name] = [a] * _count(body, scope) if "count" in body else a
    policy_docs = scope["data"].setdefault("aws_iam_policy_document", {})
    for doc in docs:
        for name, body in doc.get("data", {}).get("aws_iam_policy_document", {}).items():
            policy_docs[name] = {"json": json.dumps(policy_document(body, scope))}
    return scope


def _resources(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resources of every file, by kind then name (files may share a kind)."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for kind, table in doc.get("resource", {}).items():
            for name, body in table.items():
                if name in out.setdefault(kind, {}):
                    raise hcl.HclError(f"{kind}.{name} declared twice")
                out[kind][name] = body
    return out


def _count(body: dict[str, Any], scope: dict[str, Any]) -> int:
    return int(hcl.template(body["count"], scope)) if "count" in body else 1


def policy_document(body: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """An `aws_iam_policy_document` data source's JSON, dynamic statements expanded."""
    blocks = list(body.get("statement", []))
    for dyn in _as_list(body.get("dynamic", {}).get("statement", [])):
        blocks += [dyn["content"]] * len(hcl.template(dyn["for_each"], scope))
    statements = []
    for block in blocks:
        b = hcl.evaluate(block, scope)
        st: dict[str, Any] = {
            "Sid": b.get("sid", ""),
            "Effect": b.get("effect", "Allow"),
            "Action": b["actions"],
            "Resource": b["resources"],
        }
        for c in b.get("condition", []):
            st.setdefault("Condition", {}).setdefault(c["test"], {})[c["variable"]] = c["values"]
        statements.append(st)
    version = hcl.template(body.get("version", "2012-10-17"), scope)
    return {"Version": version, "Statement": statements}


def tf_inventory(
    docs: list[dict[str, Any]], variables: dict[str, Any], resources_yaml: dict[str, Any]
) -> dict[str, Any]:
    """What the Terraform files deploy, `resources_yaml` being the template of its stack."""
    scope = _tf_scope(docs, variables, resources_yaml)
    resources = _resources(docs)
    # The resources stack's parameters with their defaults, as CloudFormation sees them.
    stack = scope["aws_cloudformation_stack"]["resources"]
    inv: dict[str, Any] = {"stack-parameters": stack["resolved"]}
    skip = frozenset({"depends_on", "lifecycle", "count"})
    role_statements: dict[str, list[str]] = {}
    targets: dict[str, list[str]] = {}
    rules: dict[str, dict[str, Any]] = {}
    for kind, table in resources.items():
        for name, body in table.items():
            if _count(body, scope) == 0:
                continue
            p = hcl.evaluate(body, scope, skip)
            if kind == "aws_lambda_function":
                inv[f"function {p['function_name']}"] = {
                    "handler": p["handler"],
                    "runtime": p["runtime"],
                    "memory": p["memory_size"],
                    "timeout": p["timeout"],
                    "architectures": p.get("architectures", ["x86_64"]),
                    "environment": p["environment"]["variables"],
                    "role": p["role"],
                    "reserved_concurrency": p.get("reserved_concurrent_executions"),
                    "tags": _normalise_tags(p.get("tags")),
                }
            elif kind == "aws_iam_role":
                inv[f"role {p['name']}"] = {
                    "trust": _statements(p["assume_role_policy"]),
                    "statements": role_statements.setdefault(p["name"], []),
                }
            elif kind == "aws_iam_role_policy":
                role_statements.setdefault(p["role"], []).extend(_statements(p["policy"]))
            elif kind == "aws_lambda_event_source_mapping":
                dest = p.get("destination_config", {}).get("on_failure", {})
                inv[f"event-source {_fn_name(p['function_name'])} {p['event_source_arn']}"] = {
                    "batch_size": p.get("batch_size"),
                    "starting_position": p.get("starting_position"),
                    "batching_window": p.get("maximum_batching_window_in_seconds", 0),
                    "response_types": p.get("function_response_types", []),
                    "bisect": p.get("bisect_batch_on_function_error", False),
                    "retries": p.get("maximum_retry_attempts"),
                    "parallelization": p.get("parallelization_factor"),
                    "on_failure": dest.get("destination_arn"),
                    "max_concurrency": p.get("scaling_config", {}).get("maximum_concurrency"),
                }
            elif kind == "aws_lambda_function_event_invoke_config":
                dest = p.get("destination_config", {}).get("on_failure", {})
                inv[f"invoke-config {_fn_name(p['function_name'])}"] = {
                    "retries": p.get("maximum_retry_attempts"),
                    "max_age": p.get("maximum_event_age_in_seconds"),
                    "on_failure": dest.get("destination"),
                }
            elif kind == "aws_lambda_permission":
                inv[f"permission {_fn_name(p['function_name'])} {p['principal']}"] = {
                    "action": p["action"],
                    "source_arn": p.get("source_arn"),
                    "source_account": p.get("source_account"),
                }
            elif kind == "aws_cloudwatch_event_rule":
                pattern = p.get("event_pattern")
                rules[p["name"]] = {
                    "schedule": p.get("schedule_expression"),
                    "pattern": json.loads(pattern) if pattern else None,
                    "state": p.get("state", "ENABLED"),
                }
            elif kind == "aws_cloudwatch_event_target":
                targets.setdefault(p["rule"], []).append(_fn_name(p["arn"]))
            elif kind == "aws_cloudwatch_log_account_policy":
                inv[f"account-policy {p['policy_name']}"] = {
                    "type": p["policy_type"],
                    "scope": p.get("scope"),
                    "selection": " ".join(p.get("selection_criteria", "").split()),
                    "document": json.loads(p["policy_document"]),
                }
            elif kind != "aws_cloudformation_stack":
                inv[f"unmatched {kind} {name}"] = p
    for name, rule in rules.items():
        inv[f"rule to {','.join(sorted(targets.get(name, [])))}"] = rule
    for key, item in inv.items():
        if key.startswith("role "):
            item["statements"] = sorted(item["statements"])
    return inv


# ---------------------------------------------------------------- comparing
def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two inventories, one line per resource or property."""
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append(f"only in CloudFormation: {key}")
        elif key not in a:
            out.append(f"only in Terraform: {key}")
        elif a[key] != b[key]:
            left, right = a[key], b[key]
            if isinstance(left, dict) and isinstance(right, dict):
                for prop in sorted(set(left) | set(right)):
                    lv, rv = left.get(prop), right.get(prop)
                    if isinstance(lv, list) and isinstance(rv, list) and lv != rv:
                        out += [
                            f"{key}: {prop}: only in CloudFormation: {v}" for v in lv if v not in rv
                        ]
                        out += [f"{key}: {prop}: only in Terraform: {v}" for v in rv if v not in lv]
                    elif lv != rv:
                        out.append(
                            f"{key}: {prop}: CloudFormation {left.get(prop)!r:.600}"
                            f" != Terraform {right.get(prop)!r:.600}"
                        )
            else:
                out.append(f"{key}: {left!r} != {right!r}")
    return out


def compare(stage_dir: Path, variables: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(CloudFormation inventory, differences) for one packaged stage and scenario."""
    sam = yaml.safe_load((stage_dir / "cloudformation" / "sam.yaml").read_text())
    plain = sam_to_cloudformation(sam)
    tf_dir = stage_dir / "terraform"
    resources_yaml = load_cfn(tf_dir / "resources.yaml")
    a = cfn_inventory(plain, cfn_parameters(variables), resources_yaml)
    docs = [json.loads(p.read_text()) for p in sorted(tf_dir.glob("*.tf.json"))]
    b = tf_inventory(docs, variables, resources_yaml)
    return a, differences(a, b)


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "out/package")
    failed = 0
    for stage_dir in sorted(p for p in out.iterdir() if (p / "terraform").is_dir()):
        for scenario, variables in SCENARIOS.items():
            inv, diffs = compare(stage_dir, variables)
            roles = [k for k in inv if k.startswith("role ")]
            n_statements = sum(len(inv[k]["statements"]) for k in roles)
            verdict = "same" if not diffs else f"{len(diffs)} differences"
            print(
                f"parity: stage={stage_dir.name} scenario={scenario} resources={len(inv) - 1} "
                f"roles={len(roles)} statements={n_statements} {verdict}"
            )
            for d in diffs:
                print(f"  {d}")
            failed += bool(diffs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
