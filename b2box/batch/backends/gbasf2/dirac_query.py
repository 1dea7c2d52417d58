"""Questions to DIRAC, asked from inside the gbasf2 environment (run as a script there, never imported by b2box).

    python3 dirac_query.py version               -> {"belledirac": "v5r9", "dirac": "v7r3p1"}
    python3 dirac_query.py proxy                 -> {"ok": true, "seconds_left": N, "username": U, "group": G}
    python3 dirac_query.py status USER P1 P2 ... -> {"projects": {P: {job id: {...}} or null}, "proxy_seconds": N}
    python3 dirac_query.py lfns USER QUERY       -> ["/belle/user/...", ...]

The status of every project of a run comes from one call of BelleDIRAC's InformationCollector (b2luigi asks once
per project and up to three times per failure; DIRAC servers rate-limit status calls, b2luigi#174). It prints one
JSON document on stdout; an error from DIRAC goes to stderr with exit 2. The BelleDIRAC calls are those b2luigi's
helper scripts make (initializeCS became mandatory in new gbasf2, b2luigi#208).
"""

import json
import sys


def _fail(message):
    sys.stderr.write(str(message) + "\n")
    sys.exit(2)


def _proxy():
    from DIRAC.Core.Base import Script

    Script.enableCS()
    from DIRAC.Core.Security.ProxyInfo import getProxyInfo

    found = getProxyInfo()
    if not found.get("OK"):
        return {"ok": False, "seconds_left": 0, "message": found.get("Message", "no proxy")}
    value = found["Value"]
    return {"ok": True, "seconds_left": int(value.get("secondsLeft", 0)), "username": value.get("username", ""),
            "group": value.get("group", "")}  # fmt: skip


def _status(user, projects):
    from BelleDIRAC.Client.helpers.common import initializeCS
    from BelleDIRAC.gbasf2.lib.job.information_collector import InformationCollector

    initializeCS()
    collector = InformationCollector()
    found = collector.getAllJobsInProjects(projects, date="1970-01-01", login=[user, "belle"],
                                           statuses={"Status": ["all"]})  # fmt: skip
    if not found.get("OK"):
        _fail(found.get("Message", "getAllJobsInProjects failed"))
    items = {name: found["Value"].get(name) or [] for name in projects}
    everything = [item for name in projects for item in items[name]]
    summary = collector.getJobSummary(everything) if everything else {"OK": True, "Value": {}}
    if not summary.get("OK"):
        _fail(summary.get("Message", "getJobSummary failed"))
    answer = {name: ({} if items[name] else None) for name in projects}
    for job_id, job in summary["Value"].items():
        group = job.get("JobGroup")
        if group in answer and answer[group] is not None:
            answer[group][str(job_id)] = dict((key, str(value)) for key, value in job.items())
    return {"projects": answer, "proxy_seconds": _proxy()["seconds_left"]}


def _lfns(user, query):
    from BelleDIRAC.Client.helpers.common import initializeCS
    from BelleDIRAC.gbasf2.lib.ds.manager import Manager

    initializeCS()
    found = Manager().getLfns(dataType=None, dataset=query, user=user)
    if not found.get("OK"):
        _fail(found.get("Message", "getLfns failed"))
    return list(found["Value"])


def _version():
    import BelleDIRAC
    import DIRAC

    belle = getattr(BelleDIRAC, "version", None) or getattr(BelleDIRAC, "__version__", "")
    return {"belledirac": str(belle), "dirac": str(getattr(DIRAC, "version", ""))}


def main(arguments):
    """Answer one question (see the module docstring)."""
    question = arguments[0] if arguments else ""
    if question == "version":
        answer = _version()
    elif question == "proxy":
        answer = _proxy()
    elif question == "status":
        answer = _status(arguments[1], arguments[2:])
    elif question == "lfns":
        answer = _lfns(arguments[1], arguments[2])
    else:
        _fail("unknown question %r" % question)
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1:])
