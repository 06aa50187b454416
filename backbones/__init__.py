"""The backbone boundary: one interface (`backbones.interface`) that PairGRPO, UniRL, SFT and evaluation speak to,
and the registry that maps a backbone name (or a checkpoint's config) to its implementation package."""

from backbones.interface import AnswerSampling, Backbone, GeneratedImages, ImageSampling, Rollout
from backbones.registry import BACKBONES, backbone_class, infer_backbone, load_backbone

__all__ = [
    "BACKBONES",
    "AnswerSampling",
    "Backbone",
    "GeneratedImages",
    "ImageSampling",
    "Rollout",
    "backbone_class",
    "infer_backbone",
    "load_backbone",
]
