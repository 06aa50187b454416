"""Lumina-DiMOO (LLaDA masked-diffusion body + aMUSEd VQ) on transformers' Llama classes and diffusers' VQModel.

Loads and writes the original checkpoint layout (`lumina_dimoo.checkpoint`), builds both tasks' sequences
(`lumina_dimoo.processor`), runs the bidirectional forward (`lumina_dimoo.attention`) and maps images to codes and
back (`lumina_dimoo.vq`). The samplers are the shared masked-diffusion ones in `backbones`.
"""
