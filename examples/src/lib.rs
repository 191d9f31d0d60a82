//! Examples of embedding rrdcore; see the `examples` targets.
