#!/usr/bin/env python3
"""PIM latency: N users made eligible, then each activates (selfActivate, PT1H), is checked
allowed, and deactivates, one at a time; then N direct assignment creates as the same-run
baseline. Prints p50/p99 per step. Run by scripts/pim-latency, which starts the server."""
import json, subprocess, sys, time, urllib.request, uuid, statistics, os
base = sys.argv[1]; data = sys.argv[2]; key = sys.argv[3]; n = int(sys.argv[4])
bin_ = os.environ.get("ROLECALL_BIN", "target/release/rolecall")
def call(method, path, body=None, token=key):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req) as r: out = (r.status, json.loads(r.read() or b"null"))
    except urllib.error.HTTPError as e: out = (e.code, json.loads(e.read() or b"null"))
    return out, (time.perf_counter() - t) * 1000
(st, role), _ = call("POST", "/v1/roleDefinitions", {"displayName": "PIM bench " + uuid.uuid4().hex[:6], "rolePermissions": [{"allowedResourceActions": ["contoso.bench/x/read"]}]})
assert st == 201, role
users = [str(uuid.uuid4()) for _ in range(n)]
tokens = {}
for u in users:
    (st, _), _ = call("POST", "/v1/roleEligibilitySchedules", {"principalId": u, "principalType": "user", "roleDefinitionId": role["id"], "directoryScopeId": "/"})
    assert st == 201
    tokens[u] = subprocess.check_output([bin_, "dev-token", "--data-dir", data, "--oid", u]).decode().strip()
act, deact, check = [], [], []
for u in users:
    (st, b), ms = call("POST", "/v1/roleAssignmentScheduleRequests", {"action": "selfActivate", "principalId": u, "roleDefinitionId": role["id"], "directoryScopeId": "/", "justification": "bench", "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "PT1H"}}}, tokens[u])
    assert st == 201 and b["status"] == "Provisioned", b
    act.append(ms)
    (st, b), ms = call("POST", "/v1/check", {"subject": {"principalId": u}, "action": "contoso.bench/x/read", "resource": "/"})
    assert b["allowed"] is True, b
    check.append(ms)
    (st, b), ms = call("POST", "/v1/roleAssignmentScheduleRequests", {"action": "selfDeactivate", "principalId": u, "roleDefinitionId": role["id"], "directoryScopeId": "/"}, tokens[u])
    assert st == 201, b
    deact.append(ms)
q = lambda xs: (statistics.median(xs), sorted(xs)[int(len(xs)*0.99)-1])
print("activate p50 %.2f ms p99 %.2f ms; deactivate p50 %.2f ms p99 %.2f ms; check after activation p50 %.2f ms (n=%d)" % (*q(act), *q(deact), q(check)[0], n))
direct = []
for u in users:
    (st, b), ms = call("POST", "/v1/roleAssignments", {"principalId": u, "principalType": "user", "roleDefinitionId": role["id"], "directoryScopeId": "/applications/" + u})
    assert st == 201, b
    direct.append(ms)
print("baseline, same run: direct assignment create p50 %.2f ms; activation/create = %.2f" % (statistics.median(direct), statistics.median(act) / statistics.median(direct)))
