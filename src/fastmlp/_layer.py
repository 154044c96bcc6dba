"""The layer protocol: parameters as NumPy views, forward(x), backward(grad_out) -> grad_in."""
import numpy as np

from ._validation import check_array, resolve_dtype


class Layer:
    """Base class. A layer owns no memory of its own once placed in a model: its parameters and
    gradients are views into the model's flat buffers (see `build`).

    Subclasses define `param_shapes`, `output_dim_for`, `init_params`, `forward`, `backward`."""

    def __init__(self):
        self.input_dim = None
        self.output_dim = None
        self.dtype = None
        self.n_threads = 1
        self._params = []
        self._grads = []

    # ---- shapes and parameters ----
    def param_shapes(self, input_dim):
        """[(name, shape), ...] of the trainable parameters for this input width."""
        return []

    def output_dim_for(self, input_dim):
        raise NotImplementedError

    def init_params(self, rng):
        """Fill the parameters (a NumPy Generator is given)."""

    @property
    def built(self):
        return self.output_dim is not None

    def build(self, input_dim, dtype="float32", params=None, grads=None, rng=None, seed=None):
        """Fix the input width and dtype, bind parameter/gradient views and initialise them.

        Inside a model `params`/`grads` are views into its flat buffers; standalone, the layer
        allocates its own. Initialisation uses `rng` (a NumPy Generator) or `seed`."""
        dtype = resolve_dtype(dtype)
        shapes = self.param_shapes(input_dim)
        if params is None:
            params = [np.zeros(shape, dtype) for _, shape in shapes]
            grads = [np.zeros(shape, dtype) for _, shape in shapes]
        self.input_dim = int(input_dim)
        self.dtype = dtype
        self._params = list(params)
        self._grads = list(grads)
        self.output_dim = int(self.output_dim_for(self.input_dim))
        if shapes:
            self.init_params(rng if rng is not None else np.random.default_rng(seed))
        return self

    @property
    def params(self):
        """Trainable parameters (views; write into them with `[...] =`)."""
        return list(self._params)

    @property
    def grads(self):
        """Gradients of the last backward pass, aligned with `params`."""
        return list(self._grads)

    @property
    def n_params(self):
        return int(sum(p.size for p in self._params))

    def penalty(self, add_gradient=True):
        """Value of this layer's regularisation terms; adds their gradient to `grads`."""
        return 0.0

    def accumulate_shared_grads(self):
        """Add gradients of parameters shared with another layer to their owner (after the
        whole backward pass, before penalties)."""

    def apply_constraints(self):
        """Project the parameters back onto their constraint set (after each update)."""

    def infer(self, x):
        """Forward pass that stores nothing (safe to call from several threads at once)."""
        raise NotImplementedError

    def __getstate__(self):
        # The forward caches are scratch, not state: never pickle them.
        return {k: v for k, v in self.__dict__.items() if k not in ("_x", "_z", "_y", "_mask")}

    # ---- helpers for subclasses ----
    def _check_input(self, x):
        if not self.built:
            dt = np.asarray(x).dtype
            self.build(np.shape(x)[-1] if np.ndim(x) == 2 else 0,
                       dt if dt in (np.float32, np.float64) else np.float32)
        # Shape and dtype only: a layer propagates NaN like any function (the model checks
        # the user's data once, at fit/predict, and stops training on a non-finite loss).
        return check_array(x, self.dtype, name="x", n_features=self.input_dim,
                           owner=type(self).__name__, allow_empty=True, finite=False)

    def _check_grad(self, grad_out, shape):
        g = np.ascontiguousarray(grad_out, dtype=self.dtype)
        if g.shape != shape:
            raise ValueError(f"grad_out has shape {g.shape}, expected {shape} (the forward output)")
        return g

    def _cached(self, *names):
        try:
            return tuple(getattr(self, n) for n in names)
        except AttributeError:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): run forward first."
            ) from None

    def get_config(self):
        return {}
