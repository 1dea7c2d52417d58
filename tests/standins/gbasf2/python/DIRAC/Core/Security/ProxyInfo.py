"""DIRAC's getProxyInfo, faked from the stand-in's proxy (keys as in DIRAC's ProxyInfo.py)."""

from standin_state import gbasf2_standin

from DIRAC.Core.Security.X509Chain import X509Chain


def getProxyInfo():
    found = gbasf2_standin.proxy()
    if not found:
        return {"OK": False, "Message": "No proxy found"}
    user = gbasf2_standin.user()
    return {
        "OK": True,
        "Value": {
            "subject": f"/C=JP/O=KEK/OU=CRC/CN={user}/CN=proxy",
            "issuer": f"/C=JP/O=KEK/OU=CRC/CN={user}",
            "identity": f"/C=JP/O=KEK/OU=CRC/CN={user}",
            "secondsLeft": gbasf2_standin.seconds_left(),
            "group": found.get("group", "belle"),
            "path": "/tmp/x509up_standin",
            "username": user,
            "properties": ["NormalUser"],
            "isProxy": True,
            "isLimitedProxy": False,
            "validDN": True,
            "validGroup": True,
            "hasVOMS": True,
            "VOMS": ["/belle"],
            "rfc": True,
            "chain": X509Chain(),
        },
    }
