"""Building a run's image (``vci package``): the Options noun shared by the modules of this package.

The step reads top-down (ko's build -> publish): ``package`` resolves the run and calls ``image`` (pick
the base, build the layers that ``plan`` lays out, cached; assemble the image), then ``outputs`` (push,
OCI layout, docker tarball, Dockerfile, refs file). ``plan`` is pure apart from reading vci's own source;
``wheels`` installs a run's lock for the image's platform; ``bytecode`` compiles it (and the runtime)
ahead, reproducibly; ``dockerfile`` writes the same image as a Dockerfile and build context. Importing
this package imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from ..refs import check_tag, split_repository


@dataclass
class Options:
    """What ``vci package`` was asked for."""

    base: str | None = None
    push: list[str] = field(default_factory=list)
    layout: str | None = None
    tar: str | None = None
    dockerfile: str | None = None
    insecure: bool | None = None
    platform: str = "linux/amd64"  # one platform, or several separated by commas (an image index)
    level: int = 6
    tag: str | None = None
    builder: str = "daemonless"

    def __post_init__(self):
        """Refuse a tag or repository the registry would refuse, and platforms no build here can serve,
        now, before anything is built or sent."""
        if self.tag is not None:
            check_tag(self.tag)
        for repository in self.push:
            split_repository(repository)
        if len(self.platforms) > 1 and (self.dockerfile or self.builder == "docker"):
            raise UsageError(
                f"--platform {self.platform} builds an image index without a daemon; "
                f"{'--emit-dockerfile writes' if self.dockerfile else 'the Docker Engine builds'} one platform's image",
                hint="package one --platform at a time for that, or drop "
                + ("--emit-dockerfile" if self.dockerfile else "--builder docker"),
            )

    @property
    def platforms(self) -> list[str]:
        """The platforms asked for, in order: one image each (more than one: an image index)."""
        platforms = [p.strip() for p in self.platform.split(",")]
        if not all(platforms) or len(set(platforms)) != len(platforms):
            raise UsageError(
                f"--platform {self.platform!r}: each platform once, separated by commas",
                hint="e.g. --platform linux/amd64,linux/arm64",
            )
        return platforms
