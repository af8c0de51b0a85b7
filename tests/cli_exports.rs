//! Exports that open elsewhere: `--parquet` tables that pandas reads with the expected schema, and
//! a `--projector` folder in TensorBoard's projector format. tests/fixtures/make_exports.py ran
//! the same commands and recorded what pandas, pyarrow and TensorBoard read
//! (tests/fixtures/exports/exports.json); here convlens must still write those tables (the same
//! schema and metadata, the same rows; floating-point values to the last bits the CPU's own
//! kernels may change), and its tables read back (with the parquet crate) as the codes and
//! rankings it computed.

use std::path::{Path, PathBuf};

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, StringArray, UInt32Array};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

mod cli_support;
use cli_support::{root, succeed};

const FOLDER: &str = "tests/fixtures/fashion_folder/bag";

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/exports").join(name)
}

/// A fresh folder for test `name` (the tests run at once).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-exports-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every record batch of a Parquet file, concatenated column by column is not needed here: the
/// files hold one batch.
fn read_parquet(path: &Path) -> arrow_array::RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batch = reader.next().expect("a batch").unwrap();
    assert!(reader.next().is_none(), "one batch");
    batch
}

/// Floating-point values equal to 1e-5 relative (the codes come from matrix products whose last
/// bits depend on the CPU's vector width).
fn assert_close_values(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

/// The f32 values of a column of floats or of fixed-size lists of floats, if it is one.
fn floats(column: &ArrayRef) -> Option<Vec<f32>> {
    if let Some(list) = column.as_any().downcast_ref::<FixedSizeListArray>() {
        return floats(list.values());
    }
    column
        .as_any()
        .downcast_ref::<Float32Array>()
        .map(|a| a.values().to_vec())
}

/// The table convlens wrote equals the one the fixture script gave pandas: the same schema
/// (with its metadata), the same rows; float columns to 1e-5 relative, the others exactly.
fn assert_same_table(ours: &Path, fixture_name: &str) {
    let (a, b) = (read_parquet(ours), read_parquet(&fixture(fixture_name)));
    assert_eq!(a.schema(), b.schema(), "{fixture_name}: schema");
    assert_eq!(a.num_rows(), b.num_rows(), "{fixture_name}: rows");
    for (i, field) in a.schema().fields().iter().enumerate() {
        let what = format!("{fixture_name}: {}", field.name());
        match (floats(a.column(i)), floats(b.column(i))) {
            (Some(x), Some(y)) => assert_close_values(&what, &x, &y),
            _ => assert_eq!(a.column(i).to_data(), b.column(i).to_data(), "{what}"),
        }
    }
}

/// A TSV file of numbers equal to the fixture's to 1e-5 relative.
fn assert_same_numbers(ours: &Path, theirs: &Path) {
    let numbers = |p: &Path| -> Vec<f32> {
        std::fs::read_to_string(p)
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let rows = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(rows(ours), rows(theirs), "{}: rows", ours.display());
    assert_close_values(
        &ours.display().to_string(),
        &numbers(ours),
        &numbers(theirs),
    );
}

fn report() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("exports.json")).unwrap()).unwrap()
}

#[test]
fn embed_writes_the_codes_table_and_projector_pandas_and_tensorboard_read() {
    let dir = scratch("embed");
    let (parquet, projector, npy) = (
        dir.join("codes.parquet"),
        dir.join("projector"),
        dir.join("codes.npy"),
    );
    succeed(&[
        "--no-daemon",
        "-q",
        "embed",
        "random:small-vgg",
        FOLDER,
        "--no-cache",
        "--map",
        "pca",
        "--csv",
        text(&dir.join("map.csv")),
        "--out",
        text(&npy),
        "--parquet",
        text(&parquet),
        "--projector",
        text(&projector),
    ]);
    // The tables and files make_exports.py gave pandas and TensorBoard.
    assert_same_table(&parquet, "codes.parquet");
    assert_same_numbers(
        &projector.join("tensors.tsv"),
        &fixture("projector").join("tensors.tsv"),
    );
    for name in ["metadata.tsv", "projector_config.pbtxt"] {
        assert_eq!(
            std::fs::read_to_string(projector.join(name)).unwrap(),
            std::fs::read_to_string(fixture("projector").join(name)).unwrap(),
            "{name}"
        );
    }
    let seen = report();
    let pandas = &seen["codes.parquet"];
    assert_eq!(pandas["rows"], 25);
    assert_eq!(
        pandas["arrow_types"]["code"],
        "fixed_size_list<item: float not null>[128]"
    );
    assert_eq!(pandas["pandas_dtypes"]["top1_class"], "uint32");
    let tensorboard = &seen["projector"];
    assert_eq!(tensorboard["config_equals_ours"], true);
    assert_eq!(tensorboard["tensors_read"], serde_json::json!([25, 128]));
    assert_eq!(
        tensorboard["metadata_header"],
        serde_json::json!(["path", "predicted_class", "predicted_label", "folder"])
    );
    // Read back here: the codes are the `--out` codes, row for row.
    let batch = read_parquet(&parquet);
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["path", "code", "top1_class", "top1_label", "top1_prob"]
    );
    let codes = batch
        .column(1)
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .unwrap();
    assert_eq!(codes.value_length(), 128);
    assert_eq!(
        batch.schema().field(2).data_type(),
        &DataType::UInt32,
        "top1_class"
    );
    let values = codes
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .unwrap()
        .values()
        .to_vec();
    let npy = candle_core::Tensor::read_npy(&npy).unwrap();
    assert_eq!(npy.dims(), &[25, 128]);
    assert_eq!(values, npy.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    let paths = batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(paths.value(0), format!("{FOLDER}/t00018.png"));
    // The map beside the codes (made after the last row): the CSV's points, row for row.
    let map = dir.join("codes-map.parquet");
    assert_same_table(&map, "codes-map.parquet");
    assert_eq!(
        seen["codes-map.parquet"]["columns"],
        serde_json::json!(["path", "x", "y"])
    );
    let map = read_parquet(&map);
    let csv = std::fs::read_to_string(dir.join("map.csv")).unwrap();
    let axis = |c: usize| {
        map.column(c)
            .as_any()
            .downcast_ref::<Float32Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    let (xs, ys) = (axis(1), axis(2));
    for (i, line) in csv.lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[1].parse::<f32>().unwrap(), xs[i], "{line}");
        assert_eq!(cells[2].parse::<f32>().unwrap(), ys[i], "{line}");
    }
    assert_eq!(xs.len(), 25);
    // The sprite: 25 thumbnails, 5 to a row, as large as TensorBoard allows (64 px).
    let sprite = image::open(projector.join("sprite.png")).unwrap();
    assert_eq!((sprite.width(), sprite.height()), (320, 320));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn top_writes_the_rankings_and_statistics_tables() {
    let dir = scratch("top");
    let parquet = dir.join("top.parquet");
    let out = succeed(&[
        "--no-daemon",
        "-q",
        "top",
        "random:small-vgg",
        FOLDER,
        "--layer",
        "features.3",
        "-k",
        "3",
        "--no-cache",
        "--parquet",
        text(&parquet),
        "--json",
    ]);
    for name in ["top.parquet", "top-stats.parquet"] {
        assert_same_table(&dir.join(name), name);
    }
    assert_eq!(report()["top.parquet"]["rows"], 32 * 3);
    // The table holds the JSON's rankings.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let batch = read_parquet(&parquet);
    let column = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    let (unit, rank, y, x) = (column(0), column(1), column(4), column(5));
    let value = batch
        .column(3)
        .as_any()
        .downcast_ref::<Float32Array>()
        .unwrap();
    let first = &json["top"]["units"][1]["top"][2];
    let row = 3 + 2;
    assert_eq!((unit[row], rank[row]), (1, 3));
    assert_eq!(
        f64::from(value.value(row)),
        first["value"].as_f64().unwrap()
    );
    assert_eq!(
        (u64::from(y[row]), u64::from(x[row])),
        (first["y"].as_u64().unwrap(), first["x"].as_u64().unwrap())
    );
    let stats = read_parquet(&dir.join("top-stats.parquet"));
    assert_eq!(stats.num_rows(), 32);
    assert_eq!(stats.column(4).data_type(), &DataType::Boolean, "dead");
    assert_eq!(stats.column(4).null_count(), 0);
    std::fs::remove_dir_all(&dir).ok();
}
