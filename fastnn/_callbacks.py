"""scikit-learn's callbacks (``sklearn.callback``, scikit-learn 1.9) on fastnn's fits.

``est.set_callbacks(ProgressBar(), ScoringMonitor(scoring=...))`` and callbacks that a
Pipeline or a search propagates reach every fit: the fit is the root task and each
epoch (each L-BFGS iteration) one subtask, whose end hooks get the estimator with that
epoch's weights (``fitted_estimator``) and early stopping's validation rows when there
are some (so a ScoringMonitor scores those), else the training rows. A callback asking
to stop ends the fit after that epoch, its weights kept (the L-BFGS fit cannot be
stopped: scipy's minimize before 1.11 ignores the request). With no callback set nothing
here runs. On a scikit-learn without ``sklearn.callback`` the estimators have no
``set_callbacks`` and fit as before.
"""

import numpy as np

from .kernels import layout

try:
    from sklearn.callback import CallbackSupportMixin  # its fit context: sklearn's _fit_context
except ImportError:  # scikit-learn < 1.9
    AVAILABLE = False

    class CallbackSupportMixin:
        """Nothing: this scikit-learn has no callbacks."""
else:
    AVAILABLE = True


class FitTask:
    """The callback contexts of one fit call: ``step(params)`` after every epoch (or
    iteration) returns whether a callback asks to stop; ``end()`` closes the fit."""

    def __init__(self, estimator, max_subtasks, X, y, sample_weight, table):
        self.estimator = estimator
        self.table = table
        self.data = (X, y, None if sample_weight is None else {"sample_weight": sample_weight})
        self.scored = self.data  # the rows the epochs' end hooks get
        self.context = None
        if AVAILABLE and (getattr(estimator, "_skl_callbacks", None)
                          or hasattr(estimator, "_parent_callback_ctx")):
            self.context = estimator._init_callback_context(max_subtasks=max_subtasks)
            self._begin(self.context, self.data)

    @property
    def active(self):
        return self.context is not None

    def score_on(self, X, y, sample_weight):
        """Give the epochs' end hooks these rows (early stopping's validation set)."""
        self.scored = (X, y, {"sample_weight": sample_weight})

    def _begin(self, context, data):
        X, y, metadata = data
        context.call_on_fit_task_begin(estimator=self.estimator, X=X, y=y, metadata=metadata)

    def _fitted(self, params):
        """The attributes that make a copy of the estimator predict with ``params``."""
        params = np.array(params)  # training goes on in the original buffer
        coefs, intercepts = layout.unflatten(params, self.table)
        return {"_params": params, "_table": self.table, "coefs_": coefs,
                "intercepts_": intercepts}

    def step(self, params, task_name="epoch"):
        if self.context is None:
            return False
        sub = self.context.subcontext(task_name=task_name)
        self._begin(sub, self.data)
        X, y, metadata = self.scored
        return bool(sub.call_on_fit_task_end(
            estimator=self.estimator, X=X, y=y, metadata=metadata,
            reconstruction_attributes=lambda: self._fitted(params)))

    def end(self, params):
        if self.context is not None:
            X, y, metadata = self.data
            self.context.call_on_fit_task_end(
                estimator=self.estimator, X=X, y=y, metadata=metadata,
                reconstruction_attributes=lambda: self._fitted(params))
