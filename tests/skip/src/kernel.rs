//! Facts of the running kernel that decide what a test expects.

/// (major, minor) of the running kernel, from `/proc/sys/kernel/osrelease`.
pub fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("/proc/sys/kernel/osrelease");
    let mut parts = release.trim().split(['.', '-', '+']);
    let mut num = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (num(), num())
}

/// Whether the running kernel's config (`/proc/config.gz`) has
/// `CONFIG_SYSTEM_DATA_VERIFICATION=y`, which checking BPF program
/// signatures needs; `None` when the config cannot be read.
pub fn kernel_verifies_signatures() -> Option<bool> {
    let out = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let config = String::from_utf8_lossy(&out.stdout);
    Some(config.lines().any(|l| l == "CONFIG_SYSTEM_DATA_VERIFICATION=y"))
}
