//! Resident memory per customer: the resident set of this process (which runs the service) once
//! the service holds its customers, minus the resident set just before the service started,
//! divided by the customers the service reports (`journeyd_customers`). Free heap memory is handed
//! back to the system (`malloc_trim`) before each reading, so that the difference is memory in
//! use, not allocator slack; it still includes what the service's Kafka clients hold (fetch and
//! produce buffers, metadata), so it is an upper bound of the engine's state.

/// The resident set size of this process in bytes, after free heap memory is returned.
pub(super) fn resident_bytes() -> Option<u64> {
    // SAFETY: `malloc_trim` only releases free memory of glibc's heaps; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Sum of a gauge's series in a Prometheus text body.
pub(super) fn gauge_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Prints the resident memory per customer held by the service.
pub(super) fn print_per_customer(before: Option<u64>, metrics: &str) {
    let customers = gauge_sum(metrics, "journeyd_customers");
    match (before, resident_bytes()) {
        (Some(before), Some(after)) if customers > 0.0 => println!(
            "memory: resident set {:.1} MB before the service started, {:.1} MB holding {} customers: {:.0} bytes per customer (RSS delta, Kafka client buffers included)",
            before as f64 / 1e6,
            after as f64 / 1e6,
            customers,
            after.saturating_sub(before) as f64 / customers
        ),
        _ => println!("memory: not measured (no resident set size or no customers reported)"),
    }
}
