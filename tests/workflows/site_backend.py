"""A b2box-native backend plug-in, named by the custom_backend setting: the local backend under a site's name."""

from b2box.batch.backends.local import LocalBackend


class SiteBackend(LocalBackend):
    name = "site"
