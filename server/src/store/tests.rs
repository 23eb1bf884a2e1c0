//! Model-based test of the store: random operations against a HashMap model.
