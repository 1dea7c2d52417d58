"""DIRAC's X509Chain, faked: a certificate chain that dumps a fixed PEM text."""


class X509Chain:
    def dumpAllToString(self):
        return {"OK": True, "Value": "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n"}
