"""The order of the gallery: the order in which a reader meets the capabilities (sphinx-gallery sort key)."""

ORDER = ("first_flow", "leaky_relu", "biased_neurons", "hidden_subspace", "odd_target", "load_stored_run",
         "animated_flow", "sweep", "sgd_vs_flow", "data_sets", "dynamics", "equivalent_kernels", "exchangeability",
         "matrix_model")


class ReaderOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``: examples in ORDER first, in that order."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename: str):
        name = filename.removeprefix("plot_").removesuffix(".py")
        return (ORDER.index(name), name) if name in ORDER else (len(ORDER), name)

    def __repr__(self):
        return "ReaderOrder"
