"""JAX as a peer of fastnn: the workloads' network as one jit-compiled epoch (optional).

The model and objective are FastnnTrainer's (fastnn.bench.workloads), written in JAX:

- layers ``a @ W + b``; the workload's hidden activation (relu: ``jax.nn.relu``, tanh:
  ``jnp.tanh``), identity output;
- per mini-batch of m rows the objective is fastnn's and scikit-learn's:
  ``(sum_i ce_i + alpha / 2 * sum_l ||W_l||**2) / m``, biases not penalised, with
  ``ce_i = -sum_k y_ik log p_ik``, ``p = softmax(raw)``; the value of ``-log p`` is
  clipped to ``[-log(1 - eps), -log(eps)]``, ``eps = finfo(dtype).eps`` (scikit-learn's
  log-loss clip, as fastnn's fused kernel), while the gradient is the unclipped
  ``p - y`` (fastnn's too): the clip goes through ``lax.stop_gradient``;
- ``optax.adam(lr, b1, b2, eps)``: PyTorch's form ``m_hat / (sqrt(v_hat) + eps)``, the
  torch peer's choice. fastnn and scikit-learn fold the bias correction into the step,
  ``lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)``: the same update with
  eps scaled by ``sqrt(1 - b2**t)``, the same work per step, not bit-identical;
- initial weights and permutations: the numpy RandomState draws FastnnTrainer makes
  (scikit-learn's Glorot rule, ``fastnn.kernels.layout.init_params``), so a JAX fit
  starts where fastnn's does and sees the same batches.

One jitted call per epoch: ``lax.scan`` over the full batches of the epoch's
permutation (drawn in Python and passed in, as for fastnn), the short last batch, if
any, as one more step inside the same call; rows of X and Y are gathered by index in the
compiled code. The call is compiled ahead of time (``jit(...).lower(...).compile()``)
when a trainer is built; ``compile_seconds`` holds that time, never part of the timed
fits. float64 needs ``jax_enable_x64`` (the compare worker sets it per row).

Threads: XLA's CPU thread pool is fixed when jax starts, so ``compare`` times JAX in a
worker process per thread count (:class:`JaxRunner`): 1 thread is ``XLA_FLAGS``
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` with the worker
pinned to one core; all cores is jax's default. The workers also keep XLA's threads and
the x64 switch out of the benchmark process. Importing this module imports no jax.
"""

import importlib.util
import multiprocessing
import os
import time

import numpy as np

from .workloads import ALPHA, BETA1, BETA2, EPSILON, LEARNING_RATE, SEED, WORKLOADS, load

ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def missing():
    """None when jax and optax are importable, else the reason JAX rows cannot run."""
    absent = [m for m in ("jax", "optax") if importlib.util.find_spec(m) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (pip install jax optax)"
    return None


def versions():
    """The versions of jax, jaxlib and optax installed (None for a missing one)."""
    import importlib.metadata

    found = {}
    for package in ("jax", "jaxlib", "optax"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def epoch_function(workload, dtype, optimizer):
    """The pure epoch ``(params, opt_state, X, Y, perm) -> (params, opt_state, loss_sum,
    penalty_sum)``: every mini-batch of ``perm`` (the epoch's rows, int32), one
    ``optimizer`` (optax) step each. ``params`` is a list of ``(W, b)``; the sums are
    fastnn's ``train_steps`` sums (``(loss_sum + penalty_sum) / n_rows`` is
    scikit-learn's ``loss_``)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    activation = {"relu": jax.nn.relu, "tanh": jnp.tanh}[workload.activation]
    eps = float(np.finfo(dtype).eps)
    lo, hi = float(-np.log1p(-eps)), float(-np.log(eps))
    n, batch = workload.n_samples, workload.batch_size
    n_full = n // batch

    def objective(params, xb, yb):
        a = xb
        for W, b in params[:-1]:
            a = activation(a @ W + b)
        W, b = params[-1]
        raw = a @ W + b
        nlp = jax.nn.logsumexp(raw, axis=1, keepdims=True) - raw  # -log softmax(raw)
        # scikit-learn's clipped value, the unclipped p - y gradient (fastnn's fused loss)
        nlp = nlp + lax.stop_gradient(jnp.clip(nlp, lo, hi) - nlp)
        data_loss = jnp.sum(yb * nlp)
        penalty = 0.5 * ALPHA * sum(jnp.sum(W * W) for W, _ in params)
        return (data_loss + penalty) / xb.shape[0], (data_loss, penalty)

    gradient = jax.grad(objective, has_aux=True)

    def epoch(params, opt_state, X, Y, perm):
        def step(carry, idx):
            params, opt_state = carry
            grads, sums = gradient(params, X[idx], Y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), sums

        full_batches = perm[:n_full * batch].reshape(n_full, batch)
        carry, (data_loss, penalty) = lax.scan(step, (params, opt_state), full_batches)
        loss_sum, penalty_sum = jnp.sum(data_loss), jnp.sum(penalty)
        if n % batch:  # the short last batch: one more step, same call
            carry, (data_loss, penalty) = step(carry, perm[n_full * batch:])
            loss_sum, penalty_sum = loss_sum + data_loss, penalty_sum + penalty
        return (*carry, loss_sum, penalty_sum)

    return epoch


class JaxTrainer:
    """The JAX peer in this process: ``reset()`` draws fresh weights (FastnnTrainer's
    draws) and a fresh Adam state, ``epoch(perm)`` is one compiled call, ``fit(epochs)``
    = reset + epochs, waiting for the result. Building it compiles the epoch
    (``compile_seconds``). float64 data needs ``jax_enable_x64`` on."""

    def __init__(self, workload, data, seed=SEED):
        import jax
        import jax.numpy as jnp
        import optax

        import fastnn.kernels as fk
        from fastnn.kernels import layout

        self.jax, self.jnp = jax, jnp
        self.workload, self.seed = workload, seed
        self.dtype = data.X.dtype
        if self.dtype == np.float64 and not jax.config.jax_enable_x64:
            raise ValueError("float64 needs jax.config.update('jax_enable_x64', True) first")
        n_hidden = len(workload.hidden)
        self.table = layout.dense_table(workload.layer_sizes, [fk.ACTIVATIONS[workload.activation]] * n_hidden)
        self.optimizer = optax.adam(LEARNING_RATE, b1=BETA1, b2=BETA2, eps=EPSILON)
        self.X, self.Y = jnp.asarray(data.X), jnp.asarray(data.Y)
        self.reset()
        epoch = jax.jit(epoch_function(workload, self.dtype, self.optimizer), donate_argnums=(0, 1))
        start = time.perf_counter()
        self._epoch = epoch.lower(self.params, self.opt_state, self.X, self.Y,
                                  self._device_perm(np.arange(workload.n_samples))).compile()
        self.compile_seconds = time.perf_counter() - start

    def reset(self):
        from fastnn.kernels import layout

        self.random_state = np.random.RandomState(self.seed)
        flat = layout.init_params(self.table, self.workload.activation, self.random_state, self.dtype)
        self.params = [(self.jnp.asarray(W), self.jnp.asarray(b)) for W, b in zip(*layout.unflatten(flat, self.table))]
        self.opt_state = self.optimizer.init(self.params)

    def permutation(self):
        return self.random_state.permutation(self.workload.n_samples).astype(np.int64)

    def _device_perm(self, perm):
        return self.jnp.asarray(np.asarray(perm, np.int32))  # int32 also without x64

    def epoch(self, perm=None):
        """One compiled epoch; returns the epoch's mean loss (scikit-learn's ``loss_``),
        which waits for it."""
        return float(self._run_epoch(perm)) / self.workload.n_samples

    def _run_epoch(self, perm):
        if perm is None:
            perm = self.permutation()
        self.params, self.opt_state, loss_sum, penalty_sum = self._epoch(
            self.params, self.opt_state, self.X, self.Y, self._device_perm(perm))
        return loss_sum + penalty_sum

    def fit(self, epochs):
        self.reset()
        for _ in range(epochs):
            loss = self._run_epoch(None)
        if not np.isfinite(float(loss)):  # float() waits for the last epoch
            raise FloatingPointError(f"non-finite JAX loss on {self.workload.name}")
        return self


# ------------------------------------------------------------------ worker processes


def _worker(conn, threads):
    """A worker's loop: ("load", workload, dtype) builds a trainer (compiles, one untimed
    epoch) and answers its compile seconds; ("fit", epochs) fits and answers "done";
    ("stop",) or a closed pipe ends it. Errors are answered as ("error", text)."""
    if threads == 1:  # before jax starts: XLA reads its flags and sizes its pool once
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD_XLA_FLAGS}".strip()
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    trainer = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        try:
            if message[0] == "stop":
                return
            if message[0] == "load":
                import jax

                _, name, dtype = message
                trainer = None
                jax.config.update("jax_enable_x64", np.dtype(dtype) == np.float64)
                trainer = JaxTrainer(WORKLOADS[name], load(name, dtype))
                trainer.fit(1)  # first-call costs of this process, untimed
                conn.send(("ready", trainer.compile_seconds))
            elif message[0] == "fit":
                trainer.fit(message[1])
                conn.send(("done", None))
        except Exception as exc:  # noqa: BLE001 (reported to the parent, which raises)
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, threads):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no jax yet
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, threads), daemon=True,
                                       name=f"fastnn-bench-jax-{threads}")
        self.process.start()
        child.close()

    def ask(self, *message):
        self.conn.send(message)
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the JAX worker {self.process.name} died "
                               f"(exit code {self.process.exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"the JAX worker failed: {value}")
        return value

    def stop(self):
        try:
            self.conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


_workers = {}  # thread count -> _Worker, reused by every JAX row of a run


def stop_workers():
    """End the worker processes (``compare.run`` calls it when its rows are timed)."""
    while _workers:
        _workers.popitem()[1].stop()


class JaxRunner:
    """What ``compare`` times for a JAX row: ``use_threads(t)`` loads the row into the
    worker process of ``t`` threads (compiling there: ``compile_seconds[t]``);
    ``fit(epochs)`` is that worker's ``JaxTrainer.fit``, waited for."""

    def __init__(self, workload, dtype):
        self.workload, self.dtype = workload, np.dtype(dtype).name
        self.worker, self.compile_seconds = None, {}

    def use_threads(self, threads):
        if threads not in _workers:
            _workers[threads] = _Worker(threads)
        self.worker = _workers[threads]
        self.compile_seconds[threads] = self.worker.ask("load", self.workload.name, self.dtype)

    def fit(self, epochs):
        if self.worker is None:
            raise RuntimeError("call use_threads(t) before fit")
        self.worker.ask("fit", epochs)
        return self
