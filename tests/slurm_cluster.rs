//! The Slurm example on a real cluster: `examples/slurm/submit.sh` submits `top.sbatch` as an
//! array job of four tasks and `merge.sbatch` after it to a one-node Slurm cluster this test
//! starts (munged, slurmctld and slurmd, as root, in a scratch folder, from a slurm.conf it
//! writes), and what the merge job writes, top.json and top.png, is what one unsharded
//! `convlens top` writes, to the bit. The sbatch files run as they are committed: their
//! variables (CONVLENS, MODEL, DATA, LAYER, DEVICE=cpu) point them at a small model and folder,
//! and SBATCH_GRES=none lifts their GPU request, as on a cluster of CPU nodes.
//!
//! It needs slurm-wlm and munge (.ci/run installs them) and root. Without them the test says on
//! stderr that it was skipped, and passes; with CONVLENS_REQUIRE_SLURM=1 (as .ci/run sets) it
//! fails instead. tests/cli_shards.rs runs the same sbatch files under bash with the variables
//! Slurm sets, which needs neither.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod cli_support;
use cli_support::{root, runtime_dir};

extern "C" {
    /// libc's `geteuid`: the daemons run jobs as their user, so they must run as root.
    fn geteuid() -> u32;
    /// libc's `kill`: stops a daemon with SIGTERM, so it cleans up as on a real node.
    fn kill(pid: i32, signal: i32) -> i32;
}

const SIGTERM: i32 = 15;

/// The programs the cluster needs; `submit.sh` calls `sbatch` by name.
const PROGRAMS: [&str; 8] = [
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
];

/// Where each of `PROGRAMS` is: on PATH, or in an sbin folder that a user's PATH may lack.
fn find_programs() -> Result<Vec<PathBuf>, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut folders: Vec<PathBuf> = std::env::split_paths(&path).collect();
    folders.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for program in PROGRAMS {
        match folders
            .iter()
            .map(|f| f.join(program))
            .find(|p| p.is_file())
        {
            Some(p) => found.push(p),
            None => missing.push(program),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(format!("{} not found", missing.join(", ")))
    }
}

/// A scratch folder (0755: munged requires every folder above its socket to be searchable by
/// all) with a folder of 16 small images of two kinds and sizes in two subfolders.
fn scratch() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("convlens-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, n, (w, h)) in [("stripes", 8, (40, 40)), ("noise", 8, (36, 44))] {
        let folder = dir.join("photos").join(sub);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..n {
            let picture = image::RgbImage::from_fn(w, h, |x, y| {
                let v = (x * 7 + y * (i + 3) + i * 31) % 256;
                image::Rgb([v as u8, (v * 3 % 256) as u8, ((x + y) * 5 % 256) as u8])
            });
            let ext = if sub == "noise" { "jpg" } else { "png" };
            picture.save(folder.join(format!("{i:02}.{ext}"))).unwrap();
        }
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Two different TCP ports nobody listens on now, for slurmctld and slurmd.
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// This machine's short host name: slurmctld runs only where `SlurmctldHost` names it.
fn short_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| {
            let out = Command::new("uname").arg("-n").output().ok()?;
            String::from_utf8(out.stdout).ok()
        })
        .expect("the host name");
    name.trim().split('.').next().unwrap().to_string()
}

/// The slurm.conf of a one-node cluster in `dir`. The node is declared with more CPUs and
/// memory than a CI machine has, so that the example's `--cpus-per-task=8` and `--mem=16G`
/// fit all four tasks at once (`config_overrides`: slurmd does not drain a node whose hardware
/// is smaller than declared). Nothing needs cgroups or accounting. Like a CPU-only cluster it
/// has no GPUs (no `GresTypes`): sbatch refuses top.sbatch's `--gres=gpu:1` unless
/// `SBATCH_GRES=none` overrides it. A dependency that can never be met cancels the merge job
/// rather than leaving it pending.
fn slurm_conf(dir: &Path, host: &str, ports: (u16, u16)) -> String {
    let d = dir.display();
    format!(
        "ClusterName=convlens-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge/munge.sock
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
NodeName={host} NodeAddr=127.0.0.1 CPUs=32 RealMemory=131072 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
        ctld = ports.0,
        slurmd = ports.1,
    )
}

/// munged, slurmctld and slurmd of a one-node cluster in a folder; dropping it cancels what
/// still runs and stops the daemons.
struct Cluster {
    dir: PathBuf,
    /// Folders of the programs, before the user's PATH.
    path: std::ffi::OsString,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    fn start(dir: &Path, programs: &[PathBuf]) -> Cluster {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut folders: Vec<PathBuf> = programs
            .iter()
            .map(|p| p.parent().unwrap().to_path_buf())
            .collect();
        folders.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        folders.dedup();
        let path = std::env::join_paths(folders).unwrap();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let host = short_hostname();
        let ports = free_ports();
        std::fs::write(dir.join("slurm.conf"), slurm_conf(dir, &host, ports)).unwrap();
        let mut key = [0u8; 128];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut key)
            .unwrap();
        let key_file = dir.join("munge/munge.key");
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_file)
                .unwrap(),
            &key,
        )
        .unwrap();
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            path,
            daemons: Vec::new(),
        };
        let m = dir.join("munge");
        let munge_args = [
            "--foreground".to_string(),
            "--force".to_string(),
            format!("--socket={}", m.join("munge.sock").display()),
            format!("--key-file={}", key_file.display()),
            format!("--pid-file={}", m.join("munged.pid").display()),
            format!("--log-file={}", m.join("munged.log").display()),
            format!("--seed-file={}", m.join("munged.seed").display()),
        ];
        cluster.spawn("munged", &munge_args);
        cluster.wait_for("munged's socket", Duration::from_secs(30), |c| {
            c.dir.join("munge/munge.sock").exists()
        });
        cluster.spawn("slurmctld", &["-D".to_string()]);
        cluster.spawn("slurmd", &["-D".to_string(), "-N".to_string(), host]);
        cluster.wait_for("the node to be idle", Duration::from_secs(120), |c| {
            let out = c.command("sinfo").args(["-h", "-N", "-o", "%t"]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        cluster
    }

    /// A Slurm command (or any program) with this cluster's configuration and no Slurm
    /// variables of a job this test may itself run in.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SLURM_") || name.starts_with("SBATCH_") {
                command.env_remove(name.as_ref());
            }
        }
        command
            .env("PATH", &self.path)
            .env("SLURM_CONF", self.dir.join("slurm.conf"))
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        command
    }

    fn spawn(&mut self, name: &'static str, args: &[String]) {
        let log =
            |tag: &str| std::fs::File::create(self.dir.join(format!("log/{name}.{tag}"))).unwrap();
        let child = self
            .command(name)
            .args(args)
            .stdout(log("out"))
            .stderr(log("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        self.daemons.push((name, child));
    }

    /// Waits until `ready`, failing with the daemons' logs when a daemon exits or `limit` passes.
    fn wait_for(&mut self, what: &str, limit: Duration, ready: impl Fn(&Cluster) -> bool) {
        let start = Instant::now();
        loop {
            if ready(self) {
                return;
            }
            let exited = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().unwrap()?)));
            if let Some((name, status)) = exited {
                panic!(
                    "{name} exited ({status}) waiting for {what}\n{}",
                    self.logs()
                );
            }
            if start.elapsed() > limit {
                panic!("no {what} after {limit:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs a Slurm command, requiring success.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The tail of every log in the scratch folder: the daemons' and the jobs'.
    fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = [
            self.dir.join("log"),
            self.dir.join("munge"),
            self.dir.clone(),
        ]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".log") || name.ends_with(".out") || name.ends_with(".err")
        })
        .collect();
        files.sort();
        let mut text = String::new();
        for file in files {
            let content = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            text += &format!("--- {}\n{tail}\n", file.display());
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs still running (the test failed) are cancelled before slurmd stops, so that no
        // job step outlives the cluster.
        let running = |c: &Cluster| -> bool {
            c.command("squeue")
                .args(["-h", "-o", "%i"])
                .output()
                .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
        };
        if self.daemons.len() == 3 && running(self) {
            let _ = self.command("scancel").args(["--user", "root"]).output();
            let start = Instant::now();
            while running(self) && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        // slurmd, slurmctld, then munged; SIGKILL when SIGTERM does not end one in 15 s.
        for (_, child) in self.daemons.iter_mut().rev() {
            if matches!(child.try_wait(), Ok(Some(_))) {
                continue; // exited already (and reaped: its id may be another process's now)
            }
            // SAFETY: `kill` sends a signal to our own child's process id; it touches no memory.
            unsafe {
                kill(child.id() as i32, SIGTERM);
            }
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(15) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Runs the binary in `dir` without a daemon, requiring success.
fn convlens(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_convlens"))
        .arg("--no-daemon")
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", runtime_dir())
        .env("CONVLENS_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("the convlens binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a top run's JSON says about the images, not about the work done (how many images each
/// run computed or read from its cache differs by design).
fn results(mut v: serde_json::Value) -> serde_json::Value {
    for work in ["computed", "cached"] {
        v.as_object_mut().unwrap().remove(work);
    }
    v
}

/// The number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> u64 {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {text:?}"))
        + prefix.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn the_slurm_example_runs_on_a_one_node_cluster_and_merges_into_the_single_run() {
    let required = std::env::var("CONVLENS_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    // SAFETY: `geteuid` reads the process's user id; it cannot fail.
    let euid = unsafe { geteuid() };
    let programs = match find_programs() {
        Err(missing) => Err(format!(
            "slurm-wlm and munge are not installed ({missing}; \
             `apt-get install slurm-wlm munge`, as .ci/run does)"
        )),
        Ok(_) if euid != 0 => Err(format!(
            "Slurm's daemons run jobs as their users, so they must run as root, not as user {euid}"
        )),
        Ok(programs) => Ok(programs),
    };
    let programs = match programs {
        Ok(programs) => programs,
        Err(why) if required => {
            panic!("CONVLENS_REQUIRE_SLURM=1, but no Slurm cluster can start here: {why}")
        }
        Err(why) => {
            eprintln!("skipped: the Slurm example's test starts no cluster here: {why}");
            return;
        }
    };
    let dir = scratch();
    let mut cluster = Cluster::start(&dir, &programs);

    let examples = root().join("examples/slurm");
    let convlens_bin = env!("CARGO_BIN_EXE_convlens");
    let submitted = Instant::now();
    let out = cluster
        .command("bash")
        .arg(examples.join("submit.sh"))
        .env("CONVLENS", convlens_bin)
        .env("MODEL", "random:small-vgg")
        .env("DATA", "photos")
        .env("LAYER", "features.3")
        .env("DEVICE", "cpu")
        // An SBATCH_ variable overrides the script's #SBATCH line: no GPU on this node.
        .env("SBATCH_GRES", "none")
        .env("XDG_RUNTIME_DIR", runtime_dir())
        .env("CONVLENS_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "submit.sh: {stdout}{}{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    let array = number_after(&stdout, "array job ");
    let merge = number_after(&stdout, "Submitted batch job ");

    cluster.wait_for("end of the jobs", Duration::from_secs(300), |c| {
        let queue = c.run("squeue", &["-h", "-o", "%i %T %r"]);
        assert!(
            !queue.contains("DependencyNeverSatisfied"),
            "a task of the array job failed:\n{queue}{}",
            c.logs()
        );
        queue.trim().is_empty()
    });
    eprintln!(
        "the array job and its merge ran in {:.1} s",
        submitted.elapsed().as_secs_f64()
    );
    // Finished records stay for MinJobAge (300 s): every task and the merge completed.
    let tasks = cluster.run("scontrol", &["show", "job", &array.to_string()]);
    assert_eq!(
        tasks.matches("JobState=COMPLETED").count(),
        4,
        "{tasks}{}",
        cluster.logs()
    );
    let merged_job = cluster.run("scontrol", &["show", "job", &merge.to_string()]);
    assert!(
        merged_job.contains("JobState=COMPLETED") && merged_job.contains("ExitCode=0:0"),
        "{merged_job}{}",
        cluster.logs()
    );
    // Each task ran its own shard, as its log says (`#SBATCH --output=convlens-top-%A_%a.log`).
    for task in 0..4 {
        let log =
            std::fs::read_to_string(dir.join(format!("convlens-top-{array}_{task}.log"))).unwrap();
        assert!(log.contains(&format!("shard {task}/4: ")), "{log}");
    }
    assert!(dir.join(format!("shards/top-{array}")).is_dir());
    drop(cluster);

    let single = convlens(
        &dir,
        &[
            "top",
            "random:small-vgg",
            "photos",
            "--layer",
            "features.3",
            "--no-cache",
            "--json",
            "-o",
            "single.png",
        ],
    );
    let single: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
    assert_eq!(single["images"], 16);
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("top.json")).unwrap()).unwrap();
    assert_eq!(results(merged), results(single), "top and stats differ");
    assert_eq!(
        std::fs::read(dir.join("single.png")).unwrap(),
        std::fs::read(dir.join("top.png")).unwrap(),
        "the pictures differ"
    );
    std::fs::remove_dir_all(&dir).ok();
}
