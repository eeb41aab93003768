"""Tools that drive the product from outside and never run on a robot: the stress, soak and
fault-injection machinery (``reliability``), also the harness of the node tests. The product
(``lightglue_ros``) never imports this package; ``lightglue-ros stress`` loads it lazily."""
