"""Show-o (showlab/Show-o): Phi-1.5 with QK layer norm over text + MAGVIT-v2 image tokens, omni-attention;
autoregressive answers, masked-diffusion images. Kept import-light: import the submodules you need."""
