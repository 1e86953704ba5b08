//! The configuration and example journeys built into the binary, so `journeyd demo` works from
//! any directory: they are written to a temporary directory (the runtime reads journeys from
//! disk) that is removed when the demo ends.
//!
//! The files are the repository's own `deploy/journeyd.yaml` and `journeys/*.yaml` at build time,
//! laid out as in the repository so the configuration's relative `journeys_dir: ../journeys`
//! still points at them.

use std::path::{Path, PathBuf};

/// `deploy/journeyd.yaml`.
const CONFIG: &str = include_str!("../../../../deploy/journeyd.yaml");

/// `journeys/*.yaml` (file name, text).
const JOURNEYS: [(&str, &str); 8] = [
    (
        "cart_abandonment.yaml",
        include_str!("../../../../journeys/cart_abandonment.yaml"),
    ),
    (
        "cross_sell.yaml",
        include_str!("../../../../journeys/cross_sell.yaml"),
    ),
    (
        "onboarding.yaml",
        include_str!("../../../../journeys/onboarding.yaml"),
    ),
    (
        "replenishment.yaml",
        include_str!("../../../../journeys/replenishment.yaml"),
    ),
    (
        "retargeting_suppression.yaml",
        include_str!("../../../../journeys/retargeting_suppression.yaml"),
    ),
    (
        "service_recovery.yaml",
        include_str!("../../../../journeys/service_recovery.yaml"),
    ),
    (
        "shipping_delay.yaml",
        include_str!("../../../../journeys/shipping_delay.yaml"),
    ),
    (
        "winback.yaml",
        include_str!("../../../../journeys/winback.yaml"),
    ),
];

/// The embedded files written out under a temporary directory; removed on drop.
pub struct Extracted {
    root: PathBuf,
    /// `<root>/deploy/journeyd.yaml`.
    pub config: PathBuf,
}

impl Extracted {
    /// Writes the embedded configuration and journeys under `parent`.
    pub fn write(parent: &Path) -> std::io::Result<Extracted> {
        let root = parent.join(format!("journeyd-demo-{}", std::process::id()));
        std::fs::create_dir_all(root.join("deploy"))?;
        std::fs::create_dir_all(root.join("journeys"))?;
        let config = root.join("deploy/journeyd.yaml");
        std::fs::write(&config, CONFIG)?;
        for (name, text) in JOURNEYS {
            std::fs::write(root.join("journeys").join(name), text)?;
        }
        Ok(Extracted { root, config })
    }
}

impl Drop for Extracted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_configuration_and_journeys_load_and_validate() {
        let parent = std::env::temp_dir().join(format!("embedded-test-{}", std::process::id()));
        let extracted = Extracted::write(&parent).unwrap();
        let config = journey_spec::load_config(&extracted.config).expect("valid configuration");
        let journeys =
            journey_spec::load_journeys_dir(&config.journeys_dir, &config).expect("valid journeys");
        assert_eq!(journeys.len(), JOURNEYS.len());
        drop(extracted);
        let _ = std::fs::remove_dir_all(&parent);
    }

    /// A journey added to `journeys/` must be added to [`JOURNEYS`] too, or the demo run from
    /// outside the checkout would silently lack it.
    #[test]
    fn every_example_journey_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../journeys");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
            .filter(|name| !journey_spec::is_test_file(name))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = JOURNEYS.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
