//! Sharded sweeps: `convlens top|embed DIR --shard I/N --shard-dir D` run as separate processes
//! (as a Slurm array job or a Kubernetes Indexed Job runs them, the scheduler's variables set),
//! then `convlens merge D` writes bit for bit what one unsharded run writes: the same codes, the
//! same top images per unit with their positions, the same statistics and map. A shard that
//! died is rerun alone and reads what it had done from the code cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod cli_support;
use cli_support::{root, runtime_dir};

/// A scratch folder with a folder of 30 small images of two kinds and sizes, in two subfolders,
/// and one file that is not an image.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-shards-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, n, (w, h)) in [("stripes", 14, (40, 40)), ("noise", 16, (36, 44))] {
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
    std::fs::write(dir.join("photos").join("notes.txt"), "not an image").unwrap();
    dir
}

/// Runs the binary in `dir` (in-process, no daemon) with `env` set, requiring success.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_convlens"));
    command
        .arg("--no-daemon")
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", runtime_dir())
        .env("CONVLENS_CACHE_DIR", dir.join("cache"));
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("the convlens binary runs");
    assert!(
        out.status.success(),
        "{args:?} {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

const TOP: &[&str] = &["top", "random:small-vgg", "photos", "--layer", "features.3"];

/// What a top run's JSON says about the images, not about the work done (how many images each
/// run computed or read from its cache differs by design).
fn results(mut v: serde_json::Value) -> serde_json::Value {
    for work in ["computed", "cached"] {
        v.as_object_mut().unwrap().remove(work);
    }
    v
}

#[test]
fn four_slurm_shards_merge_into_the_single_run_bit_for_bit() {
    let dir = scratch("slurm");
    let single = run(&dir, &[TOP, &["--no-cache", "--json"]].concat(), &[]);
    for task in ["1", "2", "3", "4"] {
        // An array job `--array=1-4`: task ids from SLURM_ARRAY_TASK_MIN.
        let env = [
            ("SLURM_ARRAY_TASK_ID", task),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        let out = run(
            &dir,
            &[
                TOP,
                &["--no-cache", "--shard", "auto", "--shard-dir", "shards"],
            ]
            .concat(),
            &env,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let index = task.parse::<usize>().unwrap() - 1;
        assert!(text.starts_with(&format!("shard {index}/4: ")), "{text}");
    }
    let merged = run(&dir, &["merge", "shards", "--json"], &[]);
    let (single, merged) = (json(&single), json(&merged));
    assert_eq!(single["images"], 30);
    assert_eq!(results(merged), results(single), "top and stats differ");
    // The picture and the Parquet tables too, byte for byte.
    let outputs = |tag: &str| -> Vec<String> {
        [
            "-o",
            &format!("{tag}.png"),
            "--parquet",
            &format!("{tag}.parquet"),
        ]
        .map(String::from)
        .to_vec()
    };
    let (single, merged) = (outputs("single"), outputs("merged"));
    run(
        &dir,
        &[TOP, &["--no-cache"], &as_str(&single)].concat(),
        &[],
    );
    run(
        &dir,
        &[&["merge", "shards"][..], &as_str(&merged)].concat(),
        &[],
    );
    for suffix in [".png", ".parquet", "-stats.parquet"] {
        assert_eq!(
            std::fs::read(dir.join(format!("single{suffix}"))).unwrap(),
            std::fs::read(dir.join(format!("merged{suffix}"))).unwrap(),
            "{suffix}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn embed_shards_merge_into_the_same_codes_and_map() {
    let dir = scratch("embed");
    let embed = ["embed", "random:small-vgg", "photos", "--no-cache"];
    let outputs = |tag: &str| -> Vec<String> {
        [
            "--out",
            &format!("{tag}.npy"),
            "--csv",
            &format!("{tag}.csv"),
            "--map",
            "pca",
        ]
        .map(String::from)
        .to_vec()
    };
    let single = outputs("single");
    run(&dir, &[&embed[..], &as_str(&single)].concat(), &[]);
    // A Kubernetes Indexed Job of 3 completions.
    for index in ["0", "1", "2"] {
        let args = [
            &embed[..],
            &[
                "--shard",
                "auto",
                "--shard-count",
                "3",
                "--shard-dir",
                "shards",
            ],
        ]
        .concat();
        run(&dir, &args, &[("JOB_COMPLETION_INDEX", index)]);
    }
    let merged = outputs("merged");
    run(
        &dir,
        &[&["merge", "shards"][..], &as_str(&merged)].concat(),
        &[],
    );
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(read("single.npy"), read("merged.npy"), "codes");
    // The map, classes and top-1 probabilities to the bit: an image's logits do not depend on
    // its batch either.
    assert_eq!(read("single.csv"), read("merged.csv"), "map and classes");
    assert_eq!(
        String::from_utf8(read("single.csv"))
            .unwrap()
            .lines()
            .count(),
        31
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_shard_that_died_is_rerun_alone_from_the_cache() {
    let dir = scratch("rerun");
    fn shard(i: &str) -> Vec<&str> {
        [TOP, &["--shard", i, "--shard-dir", "shards"]].concat()
    }
    for i in ["0/3", "2/3"] {
        run(&dir, &shard(i), &[]);
    }
    // Shard 1 died: the merge names it.
    let out = Command::new(env!("CARGO_BIN_EXE_convlens"))
        .args(["--no-daemon", "merge", "shards"])
        .current_dir(&dir)
        .env("XDG_RUNTIME_DIR", runtime_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shards 1 of 3 are missing"), "{stderr}");
    // Before it died it had embedded some of its images: the same files (same content) under
    // another folder put them in the code cache, as its first batches would have.
    let done = dir.join("done-before-dying");
    std::fs::create_dir_all(&done).unwrap();
    let photos = dir.join("photos");
    let mine: Vec<PathBuf> = walk(&photos)
        .into_iter()
        .filter(|p| {
            let relative = convlens_models::represent::shard::relative_path(&photos, p);
            convlens_models::represent::shard::shard_of(&relative, 3) == 1
        })
        .collect();
    assert!(mine.len() >= 4, "{mine:?}");
    let half = mine.len() / 2;
    for (i, p) in mine.iter().take(half).enumerate() {
        let ext = p.extension().unwrap().to_str().unwrap();
        std::fs::copy(p, done.join(format!("{i}.{ext}"))).unwrap();
    }
    run(
        &dir,
        &[
            "top",
            "random:small-vgg",
            "done-before-dying",
            "--layer",
            "features.3",
        ],
        &[],
    );
    // The rerun computes only the rest, and the merge is the single run's.
    let rerun = run(&dir, &[&shard("1/3")[..], &["--json"]].concat(), &[]);
    let report = json(&rerun);
    assert_eq!(report["cached"], half);
    assert_eq!(report["computed"], mine.len() - half);
    let merged = run(&dir, &["merge", "shards", "--json"], &[]);
    let single = run(&dir, &[TOP, &["--no-cache", "--json"]].concat(), &[]);
    assert_eq!(results(json(&merged)), results(json(&single)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shard_mistakes_are_refused_with_the_next_step() {
    let dir = scratch("mistakes");
    let refused = |args: &[&str], env: &[(&str, &str)], needle: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_convlens"));
        command
            .arg("--no-daemon")
            .args(args)
            .current_dir(&dir)
            .env("XDG_RUNTIME_DIR", runtime_dir())
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("JOB_COMPLETION_INDEX")
            .envs(env.iter().copied());
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    };
    fn top<'a>(more: &[&'a str]) -> Vec<&'a str> {
        [TOP, more].concat()
    }
    refused(
        &top(&["--shard", "4/4", "--shard-dir", "s"]),
        &[],
        "must be below the count",
    );
    refused(
        &top(&["--shard", "auto", "--shard-dir", "s"]),
        &[],
        "give --shard I/N",
    );
    refused(
        &top(&["--shard", "auto", "--shard-dir", "s"]),
        &[("JOB_COMPLETION_INDEX", "0")],
        "--shard-count",
    );
    refused(
        &top(&["--shard", "0/2", "--shard-dir", "s", "-o", "x.png"]),
        &[],
        "give -o to `convlens merge s`",
    );
    refused(&top(&["--shard", "0/2"]), &[], "--shard-dir");
    refused(&["merge", "photos"], &[], "no shard files");
    // A top job's shards do not take embed's flags.
    run(&dir, &top(&["--shard", "0/1", "--shard-dir", "s"]), &[]);
    refused(
        &["merge", "s", "--csv", "x.csv"],
        &[],
        "--csv: the shards in s are of `convlens top`",
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e != "txt") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Runs `script` with bash (or `sh -c` for a command line) in `dir` with `env`, requiring success.
fn shell(dir: &Path, program: &str, args: &[&str], env: &[(&str, String)]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", runtime_dir())
        .env("CONVLENS_CACHE_DIR", dir.join("cache"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the shell runs");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The single run's JSON and picture, to compare a scheduler example's merge with.
fn single_top(dir: &Path) -> serde_json::Value {
    let out = run(
        dir,
        &[TOP, &["--no-cache", "--json", "-o", "single.png"]].concat(),
        &[],
    );
    json(&out)
}

#[test]
fn the_slurm_example_runs_as_an_array_job_and_its_merge() {
    // No Slurm cluster here (tests/slurm_cluster.rs submits them to one): the sbatch files run
    // under bash with the variables Slurm sets for each array task (its `#SBATCH --array` line
    // gives the tasks), then the merge job's.
    let dir = scratch("sbatch");
    let examples = root().join("examples/slurm");
    let script = std::fs::read_to_string(examples.join("top.sbatch")).unwrap();
    let array = script
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --array="))
        .expect("an array job");
    let (first, last) = array.split_once('-').unwrap();
    let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
    let common = [
        ("CONVLENS", env!("CARGO_BIN_EXE_convlens").to_string()),
        ("MODEL", "random:small-vgg".into()),
        ("DATA", "photos".into()),
        ("LAYER", "features.3".into()),
        ("DEVICE", "cpu".into()),
        ("SLURM_ARRAY_JOB_ID", "77".into()),
    ];
    for task in first..=last {
        let mut env = common.to_vec();
        env.extend([
            ("SLURM_ARRAY_TASK_ID", task.to_string()),
            ("SLURM_ARRAY_TASK_MIN", first.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", (last - first + 1).to_string()),
        ]);
        let path = examples.join("top.sbatch");
        shell(&dir, "bash", &[path.to_str().unwrap()], &env);
    }
    let mut env = common.to_vec();
    env.push(("SHARDS", "shards/top-77".into()));
    let path = examples.join("merge.sbatch");
    shell(&dir, "bash", &[path.to_str().unwrap()], &env);
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("top.json")).unwrap()).unwrap();
    assert_eq!(results(merged), results(single_top(&dir)));
    assert_eq!(
        std::fs::read(dir.join("single.png")).unwrap(),
        std::fs::read(dir.join("top.png")).unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_kubernetes_example_runs_as_an_indexed_job_and_its_merge() {
    // No cluster: each Job's container command runs under sh with the index Kubernetes gives
    // each pod, the manifest's paths pointed at a scratch folder and a small model.
    let dir = scratch("k8s");
    let manifest =
        std::fs::read_to_string(root().join("examples/kubernetes/top-job.yaml")).unwrap();
    assert!(manifest.contains("completionMode: Indexed"));
    let completions: usize = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions: "))
        .expect("completions")
        .parse()
        .unwrap();
    let commands: Vec<String> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix(r#"command: ["/bin/sh", "-c", ""#))
        .map(|c| {
            c.trim_end_matches("\"]")
                .replace("convlens ", &format!("{} ", env!("CARGO_BIN_EXE_convlens")))
                .replace("--device cuda", "--device cpu")
                .replace("/data/model.pt", "random:small-vgg")
                .replace("/data/images", "photos")
                .replace("layer4", "features.3")
                .replace("/data/", "")
        })
        .collect();
    let [shard, merge] = commands.as_slice() else {
        panic!("a shard Job and a merge Job: {commands:?}")
    };
    assert!(shard.contains(&format!("--shard-count {completions}")));
    for index in 0..completions {
        shell(
            &dir,
            "sh",
            &["-c", shard],
            &[("JOB_COMPLETION_INDEX", index.to_string())],
        );
    }
    shell(&dir, "sh", &["-c", merge], &[]);
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("top.json")).unwrap()).unwrap();
    assert_eq!(results(merged), results(single_top(&dir)));
    std::fs::remove_dir_all(&dir).ok();
}
