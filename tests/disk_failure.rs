//! A disk that refuses writes. The refusal is the kernel's own: the running gateway's file-size
//! limit (RLIMIT_FSIZE, lowered and raised again with util-linux's `prlimit --pid`) makes the
//! store file's growth fail with EFBIG, the way a full or failing disk fails a write. SIGXFSZ is
//! ignored from the start (a shell's `trap '' XFSZ` stays ignored across `exec`), as it is for
//! a daemon whose writes should fail rather than kill it; systemd's default leaves it fatal, and
//! then the unit restarts the gateway, which also loses nothing acknowledged.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Server, eventually};

fn gateway(file: &Path) -> Server {
    let program = env!("CARGO_BIN_EXE_cronpush");
    let store = format!("--persistence.file={}", file.display());
    Server::start(Path::new("sh"), &["-c", "trap '' XFSZ; exec \"$0\" \"$@\"", program, "gateway"], &[&store], "")
}

/// Sets the soft file-size limit of the running gateway; `None` lifts it.
fn limit_file_size(server: &Server, bytes: Option<u64>) {
    let limit = bytes.map_or_else(|| "unlimited:".to_string(), |b| format!("{b}:"));
    let status = Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), &format!("--fsize={limit}")])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --fsize={limit}");
}

/// A push of `series` gauges, about 40 bytes each.
fn body(series: usize) -> String {
    let mut body = String::from("# TYPE load gauge\n");
    for i in 0..series {
        body.push_str(&format!("load{{worker=\"w{i:06}\"}} {i}\n"));
    }
    body
}

#[test]
fn a_write_the_disk_refuses_is_answered_503_and_written_once_the_disk_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.data");
    let mut server = gateway(&file);
    assert_eq!(server.put("/metrics/job/before", "before 1\n").status, 200);
    let size = std::fs::metadata(&file).unwrap().len();

    // The file may not grow now, and this push needs megabytes more of it.
    limit_file_size(&server, Some(size));
    let refused = server.put("/metrics/job/big", &body(50_000));
    assert_eq!(refused.status, 503, "a write the disk refused was answered {}: {}", refused.status, refused.body);
    assert!(
        refused.body.contains("could not be saved to the store file and is not acknowledged"),
        "the answer does not say why: {}",
        refused.body
    );
    assert!(server.stderr().contains("could not write changes to the store file"), "{}", server.stderr());
    // The gateway goes on serving meanwhile.
    assert_eq!(server.get("/-/ready").status, 200);
    assert!(server.get("/metrics").body.contains("before{"), "the scrape lost what was on disk");

    // Once the disk takes writes again, the waiting change is written in the background, and
    // new pushes are acknowledged.
    limit_file_size(&server, None);
    let started = Instant::now();
    let acknowledged =
        eventually(Duration::from_secs(20), || server.put("/metrics/job/after", "after 1\n").status == 200);
    assert!(acknowledged, "pushes were not acknowledged again after the disk recovered:\n{}", server.stderr());
    assert!(started.elapsed() < Duration::from_secs(20));

    // On disk: everything, the once-refused push included (written by the retry). kill -9 leaves
    // nothing in memory to save.
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    let restarted = Server::cronpush(&[&format!("--persistence.file={}", file.display())]);
    let scrape = restarted.get("/metrics").body;
    for series in ["before{", "after{", "load{instance=\"\",job=\"big\",worker=\"w049999\"} 49999"] {
        assert!(scrape.contains(series), "{series} is not in the store file after the restart");
    }
}
