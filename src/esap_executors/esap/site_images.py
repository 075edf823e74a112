"""A catalogue entry's container image, as a site that registers software names it
(a Rosetta Container: `registry/image_name:image_tag`, reference esap.md §8)."""

from __future__ import annotations

from ..backends import capabilities_of
from ..backends.base import SoftwareImage
from ..errors import BadInput
from ..site_backends import open_backend
from ..sites import Catalogue


def image_on_site(catalogue: Catalogue, site_name: str, software: str, tag: str | None = None) -> str:
    """The image of `software` (its name, matched ignoring case) registered on the site; with
    several tags, `tag` chooses one. One request to the site; BadInput when it has no such software."""
    site = catalogue.get(site_name)
    if not capabilities_of(site).software_images:
        raise BadInput(f"site {site_name} ({site.backend}) registers no software images", field="--rosetta-site")
    backend = open_backend(site)
    try:
        offered = backend.software_images()
    finally:
        backend.close()
    return choose(offered, site_name, software, tag)


def choose(offered: list[SoftwareImage], site_name: str, software: str, tag: str | None) -> str:
    named = [image for image in offered if image.name.casefold() == software.casefold()]
    if not named:
        names = ", ".join(sorted({image.name for image in offered})) or "nothing"
        raise BadInput(f"site {site_name} has no software {software!r} (it offers: {names})",
                       field="--rosetta-software")
    if tag is not None:
        tagged = [image for image in named if image.tag == tag]
        if not tagged:
            tags = ", ".join(sorted({image.tag for image in named}))
            raise BadInput(f"software {software!r} on site {site_name} has no tag {tag!r} (its tags: {tags})",
                           field="--rosetta-tag")
        named = tagged
    images = sorted({image.image for image in named})
    if len(images) > 1:
        tags = ", ".join(sorted({image.tag for image in named}))
        raise BadInput(f"software {software!r} on site {site_name} has several images (tags: {tags}): "
                       "choose one with --rosetta-tag", field="--rosetta-tag")
    return images[0]
