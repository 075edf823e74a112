"""Rosetta fixtures for esap's tests, made through Rosetta's own ORM (run by rosetta.sh with
`manage.py shell`): a power user with a password, SSH keys and a group, the esap runner software, a
SLURM cluster and a standalone host over SSH, and one storage on each. Idempotent.

Settings come from the environment (FX_*), the password from the file FX_PASSWORD_FILE.
"""

import os

from django.contrib.auth.models import Group, User
from rosetta.core_app.models import Computing, Container, KeyPair, Profile, Storage

env = os.environ
username = env["FX_USER"]
with open(env["FX_PASSWORD_FILE"]) as handle:
    password = handle.read().strip()

user, _ = User.objects.get_or_create(username=username, defaults={"email": env["FX_EMAIL"]})
user.email = env["FX_EMAIL"]
# only a changed password is set: setting it again would log out the sessions of running tests
# (Django ties a session to the password's hash)
if not user.check_password(password):
    user.set_password(password)
user.save()
profile, _ = Profile.objects.get_or_create(user=user, defaults={"auth": "local"})
# batch tasks need access_method=direct_tunnel (no proxy, no tunnel), which Rosetta keeps
# for power users
profile.is_power_user = True
profile.save()

# the account's group: Rosetta lets a user register software only for a group of theirs
# (esap registers each step image with the runner added as a tag of the group's `esap-step`)
group, _ = Group.objects.get_or_create(name=env.get("FX_GROUP", "esap"))
user.groups.add(group)

KeyPair.objects.filter(user=user).delete()
KeyPair.objects.create(user=user, default=True, private_key_file=env["FX_PRIVATE_KEY"],
                       public_key_file=env["FX_PUBLIC_KEY"])

container = Container.objects.filter(name=env["FX_RUNNER_NAME"], user=None, group=None).first() or Container(
    name=env["FX_RUNNER_NAME"], user=None, group=None)
container.description = "esap step runner (finds its step by the task password)"
container.registry = env["FX_REGISTRY"]
container.image_name = env["FX_RUNNER_IMAGE"]
container.image_tag = env["FX_RUNNER_TAG"]
container.image_arch = "amd64"
container.image_os = "linux"
container.interface_port = 8590
container.interface_protocol = "http"
container.interface_transport = "tcp/ip"
container.supports_custom_interface_port = True
container.supports_interface_auth = True
container.save()

# a software whose image tag is in no registry: its tasks start but their runner never does
# (the tests of the backend's start timeout read Rosetta's task log through it)
broken = Container.objects.filter(name="esap-broken", user=None, group=None).first() or Container(
    name="esap-broken", user=None, group=None)
for field in ("registry", "image_name", "image_arch", "image_os", "interface_port", "interface_protocol",
              "interface_transport", "supports_custom_interface_port", "supports_interface_auth"):
    setattr(broken, field, getattr(container, field))
broken.description = "esap tests: an image tag that no registry holds"
broken.image_tag = "absent"
broken.save()

# an interactive software: busybox httpd on the port Rosetta's agent picks (BASE_PORT)
httpd = Container.objects.filter(name="esap-httpd", user=None, group=None).first() or Container(
    name="esap-httpd", user=None, group=None)
httpd.description = "esap tests: an interactive web page (busybox httpd)"
httpd.registry = env["FX_REGISTRY"]
httpd.image_name = env["FX_HTTPD_IMAGE"]
httpd.image_tag = env["FX_HTTPD_TAG"]
httpd.image_arch = "amd64"
httpd.image_os = "linux"
httpd.interface_port = 8080
httpd.interface_protocol = "http"
httpd.interface_transport = "tcp/ip"
httpd.supports_custom_interface_port = True
httpd.supports_interface_auth = False
httpd.save()

computings = {
    env["FX_SLURM_COMPUTING"]: dict(type="cluster", wms="slurm",
                                    conf={"host": env["FX_SSH_HOST"], "port": int(env["FX_SSH_PORT"]),
                                          "default_partition": "debug"}),
    env["FX_STANDALONE_COMPUTING"]: dict(type="standalone", wms=None,
                                         conf={"host": env["FX_SSH_HOST"], "port": int(env["FX_SSH_PORT"])}),
}
for name, fields in computings.items():
    computing = Computing.objects.filter(name=name, user=None, group=None).first() or Computing(
        name=name, user=None, group=None)
    computing.description = f"esap CI: {fields['type']} over SSH"
    computing.type = fields["type"]
    computing.arch = "amd64"
    computing.access_mode = "ssh+cli"
    computing.auth_mode = "user_keys"
    computing.wms = fields["wms"]
    computing.container_engines = ["singularity"]
    computing.supported_archs = []
    computing.emulated_archs = {}
    computing.conf = fields["conf"]
    computing.save()
    if profile.get_extra_conf("computing_user", computing) != env["FX_SSH_USER"]:
        profile.add_extra_conf(conf_type="computing_user", object=computing, value=env["FX_SSH_USER"])

    storage = Storage.objects.filter(name=env["FX_STORAGE"], computing=computing, user=None,
                                     group=None).first() or Storage(
        name=env["FX_STORAGE"], computing=computing, user=None, group=None)
    storage.type = "generic_posix"
    storage.access_mode = "ssh+cli"
    storage.auth_mode = "user_keys"
    storage.base_path = env["FX_STORAGE_BASE"]
    storage.bind_path = env["FX_STORAGE_BIND"]
    storage.access_through_computing = True
    storage.read_only = False
    storage.browsable = True
    storage.save()

print("fixtures ok:", user.username, container.uuid, ", ".join(computings))
