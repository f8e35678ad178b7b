"""Evaluate a CloudFormation template's intrinsic functions offline, for given parameters.

Enough of CloudFormation to compare the generated template with the Terraform output
(infra/parity.py): conditions, `Ref`, `Fn::GetAtt ... Arn`, `Fn::Sub` (both forms),
`Fn::Join`, `Fn::Split`, `Fn::If`, `Fn::Select`, `AWS::NoValue`, and the physical
names a stack would give Sluice's resources (they all carry explicit names, except
EventBridge rules, named here as Terraform names them). Anything else raises
`CfnError`: the comparison never passes by skipping what it does not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class CfnError(ValueError):
    """An intrinsic or reference this evaluator does not know."""


@dataclass(frozen=True)
class Account:
    partition: str = "aws"
    region: str = "eu-west-1"
    account: str = "123456789012"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        where = f"{self.region}:{self.account}" if regional else ":"
        return f"arn:{self.partition}:{service}:{where}:{resource}"


NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}]+)\}")


@dataclass
class Stack:
    """A template with its parameter values resolved, ready to evaluate."""

    template: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    env: Account = field(default_factory=Account)

    def __post_init__(self) -> None:
        params: dict[str, Any] = {}
        for name, spec in self.template.get("Parameters", {}).items():
            value = self.parameters.get(name, spec.get("Default"))
            if value is None:
                raise CfnError(f"parameter {name} has no value")
            if spec["Type"] == "CommaDelimitedList":
                value = [v for v in str(value).split(",")] if value != "" else [""]
            params[name] = value if isinstance(value, list) else str(value)
        unknown = set(self.parameters) - set(params)
        if unknown:
            raise CfnError(f"unknown parameters {sorted(unknown)}")
        self.params = params
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return cond is None or self.condition(cond)

    # ------------------------------------------------------------ physical ids
    def _props(self, logical_id: str) -> tuple[str, dict[str, Any]]:
        res = self.template["Resources"].get(logical_id)
        if res is None:
            raise CfnError(f"no resource {logical_id}")
        return res["Type"], res.get("Properties", {})

    def name_of(self, logical_id: str) -> str:
        kind, props = self._props(logical_id)
        key = {
            "AWS::DynamoDB::Table": "TableName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::Serverless::Function": "FunctionName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Kinesis::Stream": "Name",
            "AWS::SecretsManager::Secret": "Name",
            "AWS::Athena::WorkGroup": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::Events::Rule": "Name",
            "AWS::CloudWatch::Alarm": "AlarmName",
            "AWS::CloudWatch::Dashboard": "DashboardName",
            "AWS::Logs::Destination": "DestinationName",
        }.get(kind)
        if kind == "AWS::Glue::Database":
            return str(self.eval(props["DatabaseInput"]["Name"]))
        if kind == "AWS::KMS::Key":
            return f"key-{logical_id}"
        if key is None or key not in props:
            raise CfnError(f"{logical_id} ({kind}) has no name this evaluator knows")
        return str(self.eval(props[key]))

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Partition": self.env.partition,
            "AWS::Region": self.env.region,
            "AWS::AccountId": self.env.account,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        kind = self._props(name)[0]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.env.region}.amazonaws.com/{self.env.account}/{self.name_of(name)}"
        if kind in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret"):
            return self.get_att(name, "Arn")
        return self.name_of(name)

    def get_att(self, logical_id: str, attr: str) -> str:
        kind = self._props(logical_id)[0]
        if (kind, attr) in (("AWS::SQS::Queue", "QueueName"), ("AWS::SNS::Topic", "TopicName")):
            return self.name_of(logical_id)
        if attr != "Arn":
            raise CfnError(f"GetAtt {logical_id}.{attr}")
        n, e = self.name_of(logical_id), self.env
        arns = {
            "AWS::DynamoDB::Table": lambda: e.arn("dynamodb", f"table/{n}"),
            "AWS::SQS::Queue": lambda: e.arn("sqs", n),
            "AWS::S3::Bucket": lambda: f"arn:{e.partition}:s3:::{n}",
            "AWS::SNS::Topic": lambda: e.arn("sns", n),
            "AWS::Serverless::Function": lambda: e.arn("lambda", f"function:{n}"),
            "AWS::Lambda::Function": lambda: e.arn("lambda", f"function:{n}"),
            "AWS::IAM::Role": lambda: f"arn:{e.partition}:iam::{e.account}:role/{n}",
            "AWS::Kinesis::Stream": lambda: e.arn("kinesis", f"stream/{n}"),
            "AWS::KMS::Key": lambda: e.arn("kms", f"key/{n}"),
            "AWS::Events::Rule": lambda: e.arn("events", f"rule/{n}"),
            "AWS::SecretsManager::Secret": lambda: e.arn("secretsmanager", f"secret:{n}"),
            "AWS::Logs::LogGroup": lambda: e.arn("logs", f"log-group:{n}:*"),
            "AWS::CloudWatch::Alarm": lambda: e.arn("cloudwatch", f"alarm:{n}"),
            "AWS::Logs::Destination": lambda: e.arn("logs", f"destination:{n}"),
        }
        if kind not in arns:
            raise CfnError(f"GetAtt {logical_id}.Arn ({kind})")
        return arns[kind]()

    # ------------------------------------------------------------ intrinsics
    def _sub(self, text: str, extra: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name:
                lid, attr = name.split(".", 1)
                return self.get_att(lid, attr)
            value = self.ref(name)
            if isinstance(value, list):
                raise CfnError(f"Fn::Sub of list parameter {name}")
            return str(value)

        return _SUB.sub(one, text)

    def eval(self, node: Any) -> Any:
        """`node` with every intrinsic function resolved (NoValue entries removed)."""
        if isinstance(node, list):
            return [v for v in (self.eval(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key[4:], arg)
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _fn(self, name: str, arg: Any) -> Any:
        if name == "If":
            cond, yes, no = arg
            return self.eval(yes if self.condition(cond) else no)
        if name == "Equals":
            a, b = (self.eval(x) for x in arg)
            return str(a) == str(b) if not isinstance(a, list) else a == b
        if name == "Not":
            return not self.eval(arg[0])
        if name == "And":
            return all(self.eval(x) for x in arg)
        if name == "Or":
            return any(self.eval(x) for x in arg)
        if name == "GetAtt":
            lid, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(lid, attr)
        if name == "Sub":
            if isinstance(arg, str):
                return self._sub(arg, {})
            text, extra = arg
            return self._sub(text, {k: self.eval(v) for k, v in extra.items()})
        if name == "Join":
            sep, items = arg
            return sep.join(str(x) for x in self.eval(items))
        if name == "Split":
            sep, text = arg
            return str(self.eval(text)).split(sep)
        if name == "Select":
            index, items = arg
            return self.eval(items)[int(self.eval(index))]
        raise CfnError(f"Fn::{name} is not supported")
