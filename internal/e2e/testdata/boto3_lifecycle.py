"""The SageMaker life cycle with boto3 against Kiln, as a SageMaker user writes it.

Usage: boto3_lifecycle.py KILN_URL KILN_BINARY PREFIX

Credentials come from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY). The sagemaker client gets Kiln's URL as endpoint_url;
the sagemaker-runtime client finds it in AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME,
the other way boto3 is pointed at Kiln. Exits 1 after listing every check that
failed.
"""

import json
import sys

import boto3
import botocore

url, kiln_bin, prefix = sys.argv[1:4]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def code(e):
    return e.response["Error"]["Code"]


cfg = botocore.config.Config(retries={"max_attempts": 1})
sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", config=cfg)
rt = boto3.client("sagemaker-runtime", region_name="us-east-1", config=cfg)
fast = {"Delay": 1, "MaxAttempts": 90}
ep, v1, v2 = prefix, prefix + "-v1", prefix + "-v2"

for v in ("v1", "v2"):
    arn = sm.create_model(
        ModelName=f"{prefix}-{v}",
        PrimaryContainer={"Image": f"{kiln_bin} demo-model", "Environment": {"KILN_DEMO_VERSION": v}},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/KilnIgnoresIt",
    )["ModelArn"]
    check(arn == f"arn:aws:sagemaker:us-east-1:000000000000:model/{prefix}-{v}", f"ModelArn {arn}")
    sm.create_endpoint_config(
        EndpointConfigName=f"{prefix}-{v}",
        ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{prefix}-{v}",
            "InitialInstanceCount": 2, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0,
        }],
    )

model = sm.describe_model(ModelName=v1)
check(model["PrimaryContainer"]["Image"] == f"{kiln_bin} demo-model", f"DescribeModel {model}")
check(hasattr(model["CreationTime"], "year"), "CreationTime is a datetime")

sm.create_endpoint(EndpointName=ep, EndpointConfigName=v1)
sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig=fast)
desc = sm.describe_endpoint(EndpointName=ep)
variant = desc["ProductionVariants"][0]
check(desc["EndpointStatus"] == "InService", f"status {desc['EndpointStatus']}")
check(variant["CurrentInstanceCount"] == 2 and variant["CurrentWeight"] == 1.0, f"variant {variant}")
check("PendingDeploymentSummary" not in desc, "no pending deployment once in service")


def invoke(payload=b'{"instances": [[1, 2, 3, 4]]}', **kw):
    out = rt.invoke_endpoint(EndpointName=kw.pop("name", ep), Body=payload, ContentType="application/json", **kw)
    return out, json.loads(out["Body"].read())


out, answer = invoke()
check(out["InvokedProductionVariant"] == "AllTraffic", f"InvokedProductionVariant {out.get('InvokedProductionVariant')}")
check(answer["model_version"] == "v1", f"answer {answer}")

# The answer streamed: the demo model's server-sent events, one per row,
# in PayloadPart events.
out = rt.invoke_endpoint_with_response_stream(EndpointName=ep, Body=b'{"instances": [[1, 2, 3, 4], [4, 3, 2, 1]]}',
                                              ContentType="application/json", Accept="text/event-stream")
streamed = b"".join(ev["PayloadPart"]["Bytes"] for ev in out["Body"] if "PayloadPart" in ev)
check(out["ContentType"] == "text/event-stream" and streamed.count(b"data: ") == 2, f"response stream {out.get('ContentType')} {streamed!r}")

try:
    invoke(name="nope")
    check(False, "invoking a missing endpoint succeeded")
except rt.exceptions.ValidationError as e:
    check("nope" in e.response["Error"]["Message"], f"ValidationError message {e}")
try:
    invoke(payload=b"not json")
    check(False, "invoking with input the model refuses succeeded")
except rt.exceptions.ModelError as e:
    check(e.response.get("OriginalStatusCode") == 400, f"ModelError OriginalStatusCode {e.response}")

names = []
for page in sm.get_paginator("list_endpoints").paginate(SortBy="Name", SortOrder="Ascending",
                                                        NameContains=prefix, PaginationConfig={"PageSize": 1}):
    check(len(page["Endpoints"]) <= 1, "a page of at most one endpoint")
    names += [e["EndpointName"] for e in page["Endpoints"]]
check(names == [ep], f"ListEndpoints {names}")
models = [m["ModelName"] for p in sm.get_paginator("list_models").paginate(
    SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 1}) for m in p["Models"]]
check(models == [v1, v2], f"ListModels {models}")

try:
    sm.describe_endpoint(EndpointName="nope")
    check(False, "describing a missing endpoint succeeded")
except botocore.exceptions.ClientError as e:
    check(code(e) == "ValidationException" and "Could not find endpoint" in str(e), f"DescribeEndpoint nope: {e}")

# A canary update: the pending deployment shows while it runs.
sm.update_endpoint(EndpointName=ep, EndpointConfigName=v2, DeploymentConfig={
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY", "WaitIntervalInSeconds": 2,
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
        },
        "TerminationWaitInSeconds": 0,
        "MaximumExecutionTimeoutInSeconds": 600,
    },
})
desc = sm.describe_endpoint(EndpointName=ep)
pending = desc.get("PendingDeploymentSummary")
check(desc["EndpointStatus"] == "Updating", f"status during the update {desc['EndpointStatus']}")
check(pending is not None and pending["EndpointConfigName"] == v2, f"PendingDeploymentSummary {pending}")
try:
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=v1)
    check(False, "a second update during the first succeeded")
except botocore.exceptions.ClientError as e:
    check(code(e) == "ValidationException" and "Cannot update in-progress endpoint" in str(e), f"second update: {e}")
sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig=fast)
desc = sm.describe_endpoint(EndpointName=ep)
check(desc["EndpointConfigName"] == v2 and "PendingDeploymentSummary" not in desc, f"after the update {desc}")
check(desc["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY",
      "LastDeploymentConfig")
check(invoke()[1]["model_version"] == "v2", "the new model answers")

sm.delete_endpoint(EndpointName=ep)
sm.get_waiter("endpoint_deleted").wait(EndpointName=ep, WaiterConfig=fast)
for name in (v1, v2):
    sm.delete_endpoint_config(EndpointConfigName=name)
    sm.delete_model(ModelName=name)
check(sm.list_models(NameContains=prefix)["Models"] == [], "models left behind")

if failures:
    sys.exit(1)
print("ok")
