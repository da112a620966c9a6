"""Embedding networks and their front-ends."""

from asdflow.nets.models import NETWORKS, Ba, MultiBranchNet, Wilkinghoff, build_net

__all__ = ["NETWORKS", "Ba", "MultiBranchNet", "Wilkinghoff", "build_net"]
