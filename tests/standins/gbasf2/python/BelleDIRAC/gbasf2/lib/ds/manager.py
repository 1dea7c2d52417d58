"""BelleDIRAC's dataset Manager, faked: getLfns lists the stand-in storage element like gb2_ds_list."""

from standin_state import gbasf2_standin


class Manager:
    def getLfns(self, dataType=None, dataset=None, user=None):
        return {"OK": True, "Value": gbasf2_standin._listing(dataset or "")}
