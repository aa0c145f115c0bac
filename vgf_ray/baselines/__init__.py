"""RLlib's BC, IQL and CQL on the same data, evaluation, metrics and tracking as VGF (``algorithm: bc|iql|cql``)."""
