"""Memory to the byte: weights, KV cache, the activations autograd saves, gradients, optimizer
states, mixed precision, sharding across devices, and what fits; the tools' memory conventions.
Computes; never prints (the renderer is calc.render.memory). See docs/memory.md."""
