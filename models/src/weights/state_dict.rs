//! The state dict: stored element types, decoding stored bytes into CPU tensors (honouring a
//! view's offset, sizes and strides), choosing the model's parameters inside a training
//! checkpoint, and stripping the `module.` / `_orig_mod.` prefixes of wrapped models.
//!
//! Float tensors (f16, bf16, f32, f64) become f32; integer and bool tensors become i64.

use std::collections::{BTreeMap, HashSet};

use candle_core::{Device, Tensor};

use super::pickle::{Dict, Obj, Pickle, TensorRef, Value};

/// Parameter name -> tensor, on the CPU. Float tensors (f16, bf16, f32, f64) are converted to
/// f32; integer and bool tensors (e.g. BatchNorm's `num_batches_tracked`) are kept, as i64.
pub type StateDict = BTreeMap<String, Tensor>;

/// A tensor whose element count exceeds its storage's (stride-0 broadcasts) may have at most
/// this many elements, so a small file cannot ask for a huge allocation.
const MAX_BROADCAST_ELEMENTS: usize = 1 << 24;

/// How elements are stored in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ElemType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl ElemType {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            ElemType::F64 | ElemType::I64 | ElemType::U64 => 8,
            ElemType::F32 | ElemType::I32 | ElemType::U32 => 4,
            ElemType::F16 | ElemType::BF16 | ElemType::I16 | ElemType::U16 => 2,
            ElemType::I8 | ElemType::U8 | ElemType::Bool => 1,
        }
    }

    /// Whether the element is a float (decoded to f32) rather than an integer (decoded to i64).
    fn is_float(self) -> bool {
        matches!(
            self,
            ElemType::F64 | ElemType::F32 | ElemType::F16 | ElemType::BF16
        )
    }
}

/// A tensor as it lies in a file: a view into the bytes of its storage.
pub(crate) struct RawTensor<'a> {
    /// The whole storage.
    pub bytes: &'a [u8],
    /// The element type.
    pub dtype: ElemType,
    /// Whether the elements are big-endian.
    pub big_endian: bool,
    /// The first element, in elements from the start of the storage.
    pub offset: usize,
    /// Sizes per dimension.
    pub shape: Vec<usize>,
    /// Strides per dimension, in elements.
    pub stride: Vec<usize>,
}

/// Row-major strides for `shape`.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut stride = vec![1usize; shape.len()];
    let mut acc = 1usize;
    for (s, &d) in stride.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.saturating_mul(d);
    }
    stride
}

/// Copies `N` bytes out of `b` (zero-padded if short, which the callers rule out).
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(b) {
        *d = *s;
    }
    a
}

/// The element decoder to f32 for a float type.
fn float_decoder(dtype: ElemType, big_endian: bool) -> fn(&[u8]) -> f32 {
    match (dtype, big_endian) {
        (ElemType::F64, false) => |b| f64::from_le_bytes(arr(b)) as f32,
        (ElemType::F64, true) => |b| f64::from_be_bytes(arr(b)) as f32,
        (ElemType::F16, false) => |b| half::f16::from_le_bytes(arr(b)).to_f32(),
        (ElemType::F16, true) => |b| half::f16::from_be_bytes(arr(b)).to_f32(),
        (ElemType::BF16, false) => |b| half::bf16::from_le_bytes(arr(b)).to_f32(),
        (ElemType::BF16, true) => |b| half::bf16::from_be_bytes(arr(b)).to_f32(),
        (_, false) => |b| f32::from_le_bytes(arr(b)),
        (_, true) => |b| f32::from_be_bytes(arr(b)),
    }
}

/// The element decoder to i64 for an integer or bool type (u64 wraps to i64).
fn int_decoder(dtype: ElemType, big_endian: bool) -> fn(&[u8]) -> i64 {
    match (dtype, big_endian) {
        (ElemType::I64 | ElemType::U64, false) => |b| i64::from_le_bytes(arr(b)),
        (ElemType::I64 | ElemType::U64, true) => |b| i64::from_be_bytes(arr(b)),
        (ElemType::I32, false) => |b| i64::from(i32::from_le_bytes(arr(b))),
        (ElemType::I32, true) => |b| i64::from(i32::from_be_bytes(arr(b))),
        (ElemType::U32, false) => |b| i64::from(u32::from_le_bytes(arr(b))),
        (ElemType::U32, true) => |b| i64::from(u32::from_be_bytes(arr(b))),
        (ElemType::I16, false) => |b| i64::from(i16::from_le_bytes(arr(b))),
        (ElemType::I16, true) => |b| i64::from(i16::from_be_bytes(arr(b))),
        (ElemType::U16, false) => |b| i64::from(u16::from_le_bytes(arr(b))),
        (ElemType::U16, true) => |b| i64::from(u16::from_be_bytes(arr(b))),
        (ElemType::I8, _) => |b| i64::from(i8::from_le_bytes(arr(b))),
        (ElemType::Bool, _) => |b| i64::from(b.first().is_some_and(|&x| x != 0)),
        _ => |b| i64::from(b.first().copied().unwrap_or(0)),
    }
}

/// The elements of `raw`'s view, in row-major order, decoded by `decode`.
fn gather<T>(raw: &RawTensor<'_>, decode: fn(&[u8]) -> T) -> Result<Vec<T>, String> {
    let es = raw.dtype.size();
    let available = raw.bytes.len() / es;
    if raw.shape.len() != raw.stride.len() {
        return Err(format!(
            "{} sizes but {} strides",
            raw.shape.len(),
            raw.stride.len()
        ));
    }
    let numel = raw
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("element count of shape {:?} overflows", raw.shape))?;
    if numel == 0 {
        return Ok(Vec::new());
    }
    let mut last = raw.offset;
    for (&d, &s) in raw.shape.iter().zip(&raw.stride) {
        last = (d - 1)
            .checked_mul(s)
            .and_then(|step| last.checked_add(step))
            .ok_or_else(|| {
                format!(
                    "view (offset {}, shape {:?}, strides {:?}) overflows",
                    raw.offset, raw.shape, raw.stride
                )
            })?;
    }
    if last >= available {
        return Err(format!(
            "view (offset {}, shape {:?}, strides {:?}) needs element {} of a storage of {} elements",
            raw.offset, raw.shape, raw.stride, last, available
        ));
    }
    if numel > available && numel > MAX_BROADCAST_ELEMENTS {
        return Err(format!(
            "view of shape {:?} has {numel} elements over a storage of {available}",
            raw.shape
        ));
    }
    let element = |pos: usize| -> Result<&[u8], String> {
        raw.bytes
            .get(pos * es..pos * es + es)
            .ok_or_else(|| format!("element {pos} is outside the storage"))
    };
    let is_contiguous = raw
        .shape
        .iter()
        .zip(&raw.stride)
        .zip(contiguous_strides(&raw.shape))
        .all(|((&d, &s), c)| d == 1 || s == c);
    if is_contiguous {
        let start = raw.offset * es;
        let bytes = raw
            .bytes
            .get(start..start + numel * es)
            .ok_or_else(|| "contiguous view is outside the storage".to_string())?;
        return Ok(bytes.chunks_exact(es).map(decode).collect());
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; raw.shape.len()];
    let mut pos = raw.offset;
    for _ in 0..numel {
        out.push(decode(element(pos)?));
        for ((i, &d), &s) in index.iter_mut().zip(&raw.shape).zip(&raw.stride).rev() {
            if *i + 1 < d {
                *i += 1;
                pos += s;
                break;
            }
            pos -= s * (d - 1);
            *i = 0;
        }
    }
    Ok(out)
}

/// Decodes `raw` into a CPU tensor: f32 for floats, i64 for integers and bools.
pub(crate) fn decode(raw: &RawTensor<'_>) -> Result<Tensor, String> {
    let shape = raw.shape.clone();
    let tensor = if raw.dtype.is_float() {
        let data = gather(raw, float_decoder(raw.dtype, raw.big_endian))?;
        Tensor::from_vec(data, shape, &Device::Cpu)
    } else {
        let data = gather(raw, int_decoder(raw.dtype, raw.big_endian))?;
        Tensor::from_vec(data, shape, &Device::Cpu)
    };
    tensor.map_err(|e| e.to_string())
}

/// Strips a `module.` (DataParallel) or `_orig_mod.` (torch.compile) prefix shared by every
/// name, repeatedly, so `module._orig_mod.` and `_orig_mod.module.` go too.
pub(crate) fn strip_wrapper_prefixes<T>(mut entries: Vec<(String, T)>) -> Vec<(String, T)> {
    if entries.is_empty() {
        return entries;
    }
    loop {
        let prefix = ["module.", "_orig_mod."]
            .into_iter()
            .find(|p| entries.iter().all(|(name, _)| name.starts_with(p)));
        let Some(prefix) = prefix else {
            return entries;
        };
        for (name, _) in &mut entries {
            name.replace_range(..prefix.len(), "");
        }
    }
}

/// Keys under which checkpoints keep the model's weights, most preferred first.
const KNOWN_KEYS: &[&str] = &[
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "params",
    "weights",
    "state_dict_ema",
    "model_ema",
    "ema",
    "ema_state_dict",
];

/// How deep below the top level the search for a state dict goes.
const MAX_DEPTH: usize = 3;

/// Whether a key names training state that holds tensors but is not the model.
fn is_training_state_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("optim") || key.contains("sched") || key.contains("scaler")
}

/// A dict that could be a state dict.
struct Candidate<'p> {
    /// The key it sits under (None at the top level).
    key: Option<&'p str>,
    /// Its (name, tensor) entries.
    tensors: Vec<(String, &'p TensorRef)>,
}

/// The (name, tensor) entries of `dict` if it looks like a state dict: at least one string key
/// with a tensor value, and no dict or list values.
fn as_state_dict<'p>(pickle: &'p Pickle, dict: &'p Dict) -> Option<Vec<(String, &'p TensorRef)>> {
    let mut tensors = Vec::new();
    for &(k, v) in &dict.entries {
        match pickle.obj(v) {
            Some(Obj::Tensor(t)) => {
                if let Some(name) = pickle.str(k) {
                    tensors.push((name.to_string(), t));
                }
            }
            Some(Obj::Dict(_) | Obj::List(_)) => return None,
            _ => {}
        }
    }
    (!tensors.is_empty()).then_some(tensors)
}

/// Whether `dict` has the shape of an optimizer's state dict.
fn is_optimizer_state(pickle: &Pickle, dict: &Dict) -> bool {
    let has = |key: &str| {
        dict.entries
            .iter()
            .any(|&(k, _)| pickle.str(k).is_some_and(|s| s == key))
    };
    has("state") && has("param_groups")
}

/// Collects the candidate state dicts under `value`.
fn collect<'p>(
    pickle: &'p Pickle,
    value: Value,
    key: Option<&'p str>,
    depth: usize,
    seen: &mut HashSet<usize>,
    out: &mut Vec<Candidate<'p>>,
) {
    let Value::Obj(id) = value else {
        return;
    };
    if !seen.insert(id) {
        return;
    }
    let Some(Obj::Dict(dict)) = pickle.obj(value) else {
        return;
    };
    if is_optimizer_state(pickle, dict) {
        return;
    }
    if let Some(tensors) = as_state_dict(pickle, dict) {
        out.push(Candidate { key, tensors });
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    for &(k, v) in &dict.entries {
        let name = pickle.str(k);
        if name.is_some_and(is_training_state_key) {
            continue;
        }
        collect(pickle, v, name, depth + 1, seen, out);
    }
}

/// A short description of the top-level value, for errors.
fn describe_top(pickle: &Pickle) -> String {
    match pickle.obj(pickle.root) {
        Some(Obj::Dict(d)) => {
            let keys: Vec<String> = d
                .entries
                .iter()
                .take(12)
                .map(|&(k, _)| match pickle.str(k) {
                    Some(s) => format!("'{s}'"),
                    None => "<non-string key>".to_string(),
                })
                .collect();
            let more = if d.entries.len() > 12 { ", ..." } else { "" };
            format!("a dict with keys [{}{more}]", keys.join(", "))
        }
        Some(Obj::Tensor(_)) => "a single tensor".to_string(),
        Some(Obj::List(_)) => "a list".to_string(),
        Some(Obj::Tuple(_)) => "a tuple".to_string(),
        Some(_) => "an object".to_string(),
        None => "a plain value".to_string(),
    }
}

/// Finds the model's state dict in a checkpoint: the top level if it is one, else the dict of
/// tensors under a known key ('state_dict', 'model', 'ema', ...) up to three levels down, else
/// the largest dict of tensors; never an optimizer's or scheduler's state. Names come back with
/// wrapper prefixes stripped; non-tensor entries of the chosen dict are left out.
pub(crate) fn choose(pickle: &Pickle) -> Result<Vec<(String, &TensorRef)>, String> {
    let mut candidates = Vec::new();
    collect(
        pickle,
        pickle.root,
        None,
        0,
        &mut HashSet::new(),
        &mut candidates,
    );
    let rank = |c: &Candidate<'_>| {
        let known = c
            .key
            .and_then(|k| KNOWN_KEYS.iter().position(|&n| n == k))
            .unwrap_or(KNOWN_KEYS.len());
        (known, std::cmp::Reverse(c.tensors.len()))
    };
    let best = candidates
        .into_iter()
        .enumerate()
        .min_by_key(|(i, c)| (rank(c), *i))
        .map(|(_, c)| c)
        .ok_or_else(|| {
            format!(
                "no state dict (a dict of named tensors) found; the file holds {}",
                describe_top(pickle)
            )
        })?;
    Ok(strip_wrapper_prefixes(best.tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(bytes: &'a [u8], offset: usize, shape: &[usize], stride: &[usize]) -> RawTensor<'a> {
        RawTensor {
            bytes,
            dtype: ElemType::F32,
            big_endian: false,
            offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        }
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn weights_decode_honours_views() {
        let bytes = f32_bytes(&(0..12).map(|i| i as f32).collect::<Vec<_>>());
        let t = decode(&raw(&bytes, 0, &[3, 4], &[1, 3])).unwrap();
        let v: Vec<Vec<f32>> = t.to_vec2().unwrap();
        assert_eq!(v[0], vec![0.0, 3.0, 6.0, 9.0]);
        assert_eq!(v[2], vec![2.0, 5.0, 8.0, 11.0]);
        let t = decode(&raw(&bytes, 5, &[2, 2], &[4, 2])).unwrap();
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5.0, 7.0, 9.0, 11.0]
        );
        let t = decode(&raw(&bytes, 3, &[], &[])).unwrap();
        assert_eq!(t.to_scalar::<f32>().unwrap(), 3.0);
        let t = decode(&raw(&bytes, 0, &[2, 0], &[1, 1])).unwrap();
        assert_eq!(t.dims(), &[2, 0]);
        let t = decode(&raw(&bytes, 11, &[1, 3], &[usize::MAX, 0])).unwrap();
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![11.0; 3]
        );
    }

    #[test]
    fn weights_decode_rejects_out_of_bounds_views() {
        let bytes = f32_bytes(&[1.0; 12]);
        assert!(decode(&raw(&bytes, 9, &[4], &[1])).is_err());
        assert!(decode(&raw(&bytes, 0, &[2, 2], &[usize::MAX, 1])).is_err());
        assert!(decode(&raw(&bytes, 0, &[usize::MAX, 3], &[0, 0])).is_err());
        assert!(decode(&raw(&bytes, 0, &[1 << 40], &[0])).is_err());
        assert!(decode(&raw(&bytes, 0, &[2], &[1, 1])).is_err());
        assert!(decode(&raw(&bytes[..3], 0, &[1], &[1])).is_err());
    }

    #[test]
    fn weights_decode_converts_types() {
        let be = [0x3fu8, 0x80, 0, 0];
        let t = decode(&RawTensor {
            bytes: &be,
            dtype: ElemType::F32,
            big_endian: true,
            offset: 0,
            shape: vec![1],
            stride: vec![1],
        })
        .unwrap();
        assert_eq!(t.to_vec1::<f32>().unwrap(), vec![1.0]);
        let bytes = (-3i16).to_le_bytes();
        let t = decode(&RawTensor {
            bytes: &bytes,
            dtype: ElemType::I16,
            big_endian: false,
            offset: 0,
            shape: vec![1],
            stride: vec![1],
        })
        .unwrap();
        assert_eq!(t.to_vec1::<i64>().unwrap(), vec![-3]);
    }

    /// Builds pickles by hand.
    #[derive(Default)]
    struct Builder {
        pickle: Pickle,
    }

    impl Builder {
        fn obj(&mut self, o: Obj) -> Value {
            self.pickle.objs.push(o);
            Value::Obj(self.pickle.objs.len() - 1)
        }

        fn tensor(&mut self) -> Value {
            let storage = super::super::pickle::StorageRef {
                key: "0".into(),
                dtype: ElemType::F32,
                numel: 1,
                view: None,
            };
            self.obj(Obj::Tensor(TensorRef {
                storage,
                dtype: ElemType::F32,
                offset: 0,
                shape: vec![],
                stride: vec![],
            }))
        }

        fn dict(&mut self, entries: Vec<(&str, Value)>) -> Value {
            let entries = entries
                .into_iter()
                .map(|(k, v)| (self.obj(Obj::Str(k.to_string())), v))
                .collect();
            self.obj(Obj::Dict(Dict::from_entries(entries)))
        }

        fn tensors(&mut self, names: &[&str]) -> Value {
            let entries = names.iter().map(|&n| (n, self.tensor())).collect();
            self.dict(entries)
        }

        fn choose(mut self, root: Value) -> Result<Vec<String>, String> {
            self.pickle.root = root;
            choose(&self.pickle).map(|v| v.into_iter().map(|(n, _)| n).collect())
        }
    }

    #[test]
    fn weights_choose_finds_the_model_in_checkpoints() {
        // Beside an optimizer (even one under an unknown key) and plain values.
        let mut b = Builder::default();
        let inner = b.tensors(&["w", "exp_avg", "exp_avg_sq", "x", "y"]);
        let state = b.dict(vec![("p0", inner)]);
        let groups = b.obj(Obj::List(vec![]));
        let optimizer = b.dict(vec![("state", state), ("param_groups", groups)]);
        let model = b.tensors(&["module.a", "module.b"]);
        let best = b.tensors(&["acc"]);
        let root = b.dict(vec![
            ("epoch", Value::Int(3)),
            ("opt", optimizer),
            ("model", model),
            ("best", best),
        ]);
        assert_eq!(b.choose(root).unwrap(), vec!["a", "b"]);

        // Two levels deep.
        let mut b = Builder::default();
        let sd = b.tensors(&["_orig_mod.c"]);
        let model = b.dict(vec![("state_dict", sd)]);
        let root = b.dict(vec![("model", model), ("epoch", Value::Int(1))]);
        assert_eq!(b.choose(root).unwrap(), vec!["c"]);

        // A known key wins over a larger unknown one; among unknown keys the largest wins.
        let mut b = Builder::default();
        let ema = b.tensors(&["a", "b", "c"]);
        let model = b.tensors(&["x"]);
        let root = b.dict(vec![("ema", ema), ("model", model)]);
        assert_eq!(b.choose(root).unwrap(), vec!["x"]);
        let mut b = Builder::default();
        let foo = b.tensors(&["a"]);
        let bar = b.tensors(&["b", "c"]);
        let root = b.dict(vec![("foo", foo), ("bar", bar)]);
        assert_eq!(b.choose(root).unwrap(), vec!["b", "c"]);

        // A flat state dict with a stray non-tensor entry.
        let mut b = Builder::default();
        let t = b.tensor();
        let root = b.dict(vec![("w", t), ("version", Value::Int(2))]);
        assert_eq!(b.choose(root).unwrap(), vec!["w"]);
    }

    #[test]
    fn weights_choose_reports_missing_state_dicts() {
        let mut b = Builder::default();
        let root = b.dict(vec![("epoch", Value::Int(3))]);
        let err = b.choose(root).unwrap_err();
        assert!(err.contains("'epoch'"), "{err}");

        // Only an optimizer: refused rather than mistaken for the model.
        let mut b = Builder::default();
        let inner = b.tensors(&["exp_avg"]);
        let state = b.dict(vec![("0", inner)]);
        let groups = b.obj(Obj::List(vec![]));
        let optimizer = b.dict(vec![("state", state), ("param_groups", groups)]);
        let root = b.dict(vec![("optimizer_state", optimizer)]);
        assert!(b.choose(root).is_err());

        // A dict that contains itself terminates.
        let mut b = Builder::default();
        let root = b.dict(vec![]);
        let key = b.obj(Obj::Str("self".into()));
        let Value::Obj(id) = root else { unreachable!() };
        if let Some(Obj::Dict(d)) = b.pickle.objs.get_mut(id) {
            d.entries.push((key, root));
        }
        assert!(b.choose(root).is_err());
    }

    #[test]
    fn weights_prefixes_are_stripped() {
        let names = |v: Vec<(String, ())>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        let e = vec![
            ("module._orig_mod.a".to_string(), ()),
            ("module._orig_mod.b.c".to_string(), ()),
        ];
        assert_eq!(names(strip_wrapper_prefixes(e)), vec!["a", "b.c"]);
        let e = vec![("module.a".to_string(), ()), ("b".to_string(), ())];
        assert_eq!(names(strip_wrapper_prefixes(e)), vec!["module.a", "b"]);
        let e = vec![("_orig_mod.module.a".to_string(), ())];
        assert_eq!(names(strip_wrapper_prefixes(e)), vec!["a"]);
    }
}
