//! Kafka runtime.
