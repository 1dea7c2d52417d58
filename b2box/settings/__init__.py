"""Settings: where each value comes from, its type, and what one task resolves to.

``sources`` reads ``settings.json`` files and ``B2BOX_*`` variables,
``model`` types and validates them (pydantic, submitting side only),
``lookup`` is the chain behind ``get_setting``/``set_setting``, and
``resolved`` turns that chain into one typed object per task, which is all
that the rest of b2box reads. ``layout`` says where a task's files go;
``paths`` resolves relative folders against the workflow script.
"""

from b2box.settings.lookup import clear_setting, get_setting, set_setting

__all__ = ["clear_setting", "get_setting", "set_setting"]
