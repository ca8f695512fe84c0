//! Runnable example programs live in `examples/examples/`.
