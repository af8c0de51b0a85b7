//! A pickle reader for PyTorch checkpoints that never executes anything.
//!
//! A small stack machine over the opcodes of pickle protocols 2 to 5 (plus the protocol 0/1
//! ones that such pickles still use). Objects live in an arena and the stack holds copyable
//! references to them, so memo look-ups never copy data and self-references cannot recurse.
//!
//! Globals are checked against an allow-list the moment they are read: `collections.OrderedDict`,
//! plain builtin containers, `_codecs.encode` (protocol 2's way of writing bytes), torch's
//! tensor-rebuild functions, its storage types, dtypes and `torch.Size`. Anything else is an
//! [`Error::UnsafePickle`]. Calling an allowed global builds the matching inert value (a dict, a
//! [`TensorRef`], ...); nothing is ever imported or run.
//!
//! Every size read from the data is checked against the bytes left before anything is
//! allocated, and the total work is capped by [`MAX_CELLS`].

use std::collections::HashMap;
use std::path::Path;

use super::state_dict::ElemType;
use crate::error::{Error, Result};

/// The most work one pickle may do, in values of 16 bytes: each stack push, container slot and
/// 16 bytes of text counts one, each new object four. About 256 MiB of memory at most; a state
/// dict costs some 50 per tensor.
const MAX_CELLS: usize = 1 << 24;

/// The most dimensions a tensor may have.
const MAX_RANK: usize = 64;

/// Index of an object in [`Pickle::objs`].
pub(crate) type ObjId = usize;

/// A value on the stack: a scalar, or a reference to an object in the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum Value {
    #[default]
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Obj(ObjId),
}

/// A global on the allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    Dict,
    List,
    Tuple,
    Set,
    FrozenSet,
    TorchSize,
    CodecsEncode,
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    /// `torch.FloatStorage` and friends.
    StorageType(ElemType),
    /// `torch.float32` and friends.
    Dtype(ElemType),
}

/// The element type of a `torch.<name>Storage`.
fn storage_type(name: &str) -> Option<ElemType> {
    Some(match name {
        "FloatStorage" => ElemType::F32,
        "DoubleStorage" => ElemType::F64,
        "HalfStorage" => ElemType::F16,
        "BFloat16Storage" => ElemType::BF16,
        "LongStorage" => ElemType::I64,
        "IntStorage" => ElemType::I32,
        "ShortStorage" => ElemType::I16,
        "CharStorage" => ElemType::I8,
        "ByteStorage" => ElemType::U8,
        "BoolStorage" => ElemType::Bool,
        _ => return None,
    })
}

/// The element type of a `torch.<name>` dtype.
fn dtype(name: &str) -> Option<ElemType> {
    Some(match name {
        "float32" | "float" => ElemType::F32,
        "float64" | "double" => ElemType::F64,
        "float16" | "half" => ElemType::F16,
        "bfloat16" => ElemType::BF16,
        "int64" | "long" => ElemType::I64,
        "int32" | "int" => ElemType::I32,
        "int16" | "short" => ElemType::I16,
        "int8" => ElemType::I8,
        "uint8" => ElemType::U8,
        "bool" => ElemType::Bool,
        _ => return None,
    })
}

/// The allow-list: what `module.name` stands for, if it is allowed at all.
fn allowed_global(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("builtins" | "__builtin__", "dict") => Global::Dict,
        ("builtins" | "__builtin__", "list") => Global::List,
        ("builtins" | "__builtin__", "tuple") => Global::Tuple,
        ("builtins" | "__builtin__", "set") => Global::Set,
        ("builtins" | "__builtin__", "frozenset") => Global::FrozenSet,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => Global::RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch", "Size") => Global::TorchSize,
        ("torch", n) => {
            if let Some(t) = storage_type(n) {
                Global::StorageType(t)
            } else {
                Global::Dtype(dtype(n)?)
            }
        }
        _ => return None,
    })
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel)`,
/// plus, in the legacy format, an optional view `(view_key, offset, size)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StorageRef {
    /// The storage's key (its file name in a zip, its entry in a legacy file).
    pub key: String,
    /// The element type it was pickled with.
    pub dtype: ElemType,
    /// Its element count, as the pickle says.
    pub numel: u64,
    /// For a legacy storage view: (offset, element count) into the root storage.
    pub view: Option<(u64, u64)>,
}

/// A tensor as the pickle describes it: a strided view of a storage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorRef {
    /// The storage it views.
    pub storage: StorageRef,
    /// The tensor's element type (the storage's, unless `_rebuild_tensor_v3` says otherwise).
    pub dtype: ElemType,
    /// The first element, in elements.
    pub offset: usize,
    /// Sizes.
    pub shape: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

/// A hashable dict key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
}

/// A dict (or OrderedDict): entries in insertion order, later keys replacing earlier ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dict {
    /// (key, value) pairs in insertion order.
    pub entries: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

impl Dict {
    /// A dict of `entries` (keys not deduplicated), for tests.
    #[cfg(test)]
    pub(crate) fn from_entries(entries: Vec<(Value, Value)>) -> Dict {
        Dict {
            entries,
            index: HashMap::new(),
        }
    }
}

/// An object in the arena.
#[derive(Clone, Debug)]
pub(crate) enum Obj {
    Str(String),
    Bytes(Vec<u8>),
    /// An integer too large for i64: little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Set(Vec<Value>),
    Dict(Dict),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// A parsed pickle: the arena and the value that STOP returned.
#[derive(Debug, Default)]
pub(crate) struct Pickle {
    /// Every object created, in creation order.
    pub objs: Vec<Obj>,
    /// The pickled value.
    pub root: Value,
}

impl Pickle {
    /// The object `value` refers to, if it is one.
    pub(crate) fn obj(&self, value: Value) -> Option<&Obj> {
        match value {
            Value::Obj(id) => self.objs.get(id),
            _ => None,
        }
    }

    /// The string `value` refers to, if it is one.
    pub(crate) fn str(&self, value: Value) -> Option<&str> {
        match self.obj(value) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The hashable key of `value`, if it has one.
    fn key(&self, value: Value) -> Option<Key> {
        match value {
            Value::None => Some(Key::None),
            Value::Bool(b) => Some(Key::Int(i64::from(b))),
            Value::Int(i) => Some(Key::Int(i)),
            Value::Float(f) => Some(Key::Float(f.to_bits())),
            Value::Obj(_) => match self.obj(value) {
                Some(Obj::Str(s)) => Some(Key::Str(s.clone())),
                Some(Obj::Bytes(b)) => Some(Key::Bytes(b.clone())),
                _ => None,
            },
        }
    }
}

/// The opcodes this reader knows, by name, for error messages.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

/// The machine.
struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    /// Where the current opcode started.
    op_pos: usize,
    path: &'a Path,
    what: &'a str,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    pickle: Pickle,
    cells: usize,
}

/// Reads one pickle from `data` starting at `start`; `what` names it in errors (e.g.
/// "data.pkl"). Returns the pickle and the position just after its STOP.
pub(crate) fn read(data: &[u8], start: usize, path: &Path, what: &str) -> Result<(Pickle, usize)> {
    let mut vm = Vm {
        data,
        pos: start,
        op_pos: start,
        path,
        what,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        pickle: Pickle::default(),
        cells: 0,
    };
    let root = vm.run()?;
    vm.pickle.root = root;
    Ok((vm.pickle, vm.pos))
}

impl<'a> Vm<'a> {
    /// A format error at the current opcode.
    fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::format(
            self.path,
            format!("{}: byte {}: {message}", self.what, self.op_pos),
        )
    }

    /// Counts `n` values against [`MAX_CELLS`].
    fn charge(&mut self, n: usize) -> Result<()> {
        self.cells = self.cells.saturating_add(n);
        if self.cells > MAX_CELLS {
            return Err(self.err(format!(
                "pickle builds more than {MAX_CELLS} values; refusing to go on"
            )));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let left = self.data.len().saturating_sub(self.pos);
        if n > left && self.pos == self.op_pos {
            return Err(self.err("truncated: the pickle ends before its STOP opcode"));
        }
        if n > left {
            return Err(self.err(format!(
                "truncated: {} needs {n} bytes, {left} left",
                opcode_name(self.data.get(self.op_pos).copied().unwrap_or(0))
            )));
        }
        let data: &'a [u8] = self.data;
        let bytes = data
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.err("read past the end"))?;
        self.pos += n;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    /// A length read as `n` little-endian bytes, as usize.
    fn len_u64(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.take_array()?);
        usize::try_from(n).map_err(|_| self.err(format!("length {n} is too large")))
    }

    /// A text line (protocol 0 arguments, GLOBAL's names), without its newline.
    fn line(&mut self) -> Result<&'a str> {
        let data: &'a [u8] = self.data;
        let rest = data.get(self.pos..).unwrap_or(&[]);
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.err("truncated: a text argument has no end of line"));
        };
        let line = rest.get(..n).unwrap_or(&[]);
        self.pos += n + 1;
        std::str::from_utf8(line).map_err(|_| self.err("a text argument is not UTF-8"))
    }

    fn push(&mut self, v: Value) -> Result<()> {
        self.charge(1)?;
        self.stack.push(v);
        Ok(())
    }

    fn alloc(&mut self, o: Obj) -> Result<Value> {
        self.charge(4)?;
        self.pickle.objs.push(o);
        Ok(Value::Obj(self.pickle.objs.len() - 1))
    }

    fn push_obj(&mut self, o: Obj) -> Result<()> {
        let v = self.alloc(o)?;
        self.push(v)
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("stack underflow"))
    }

    /// The values pushed since the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.err("MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn obj(&self, v: Value) -> Option<&Obj> {
        self.pickle.obj(v)
    }

    fn obj_mut(&mut self, v: Value) -> Option<&mut Obj> {
        match v {
            Value::Obj(id) => self.pickle.objs.get_mut(id),
            _ => None,
        }
    }

    fn str(&self, v: Value) -> Option<&str> {
        self.pickle.str(v)
    }

    fn int(&self, v: Value, what: &str) -> Result<i64> {
        match v {
            Value::Int(i) => Ok(i),
            Value::Bool(b) => Ok(i64::from(b)),
            _ => Err(self.err(format!("{what} is not an integer"))),
        }
    }

    fn usize(&self, v: Value, what: &str) -> Result<usize> {
        let i = self.int(v, what)?;
        usize::try_from(i).map_err(|_| self.err(format!("{what} is {i}, not a valid size")))
    }

    /// The items of a tuple or list.
    fn items(&self, v: Value, what: &str) -> Result<Vec<Value>> {
        match self.obj(v) {
            Some(Obj::Tuple(items) | Obj::List(items) | Obj::Set(items)) => Ok(items.clone()),
            _ => Err(self.err(format!("{what} is not a tuple or list"))),
        }
    }

    /// Inserts into the dict `target`.
    fn set_items(&mut self, target: Value, pairs: &[Value]) -> Result<()> {
        if !pairs.len().is_multiple_of(2) {
            return Err(self.err("SETITEMS with an odd number of values"));
        }
        let keys: Vec<Option<Key>> = pairs
            .chunks(2)
            .map(|kv| kv.first().and_then(|&k| self.pickle.key(k)))
            .collect();
        let key_bytes: usize = keys
            .iter()
            .map(|k| match k {
                Some(Key::Str(s)) => s.len(),
                Some(Key::Bytes(b)) => b.len(),
                _ => 0,
            })
            .sum();
        self.charge(pairs.len() + key_bytes / 16)?;
        let Some(Obj::Dict(dict)) = self.obj_mut(target) else {
            return Err(self.err("SETITEM(S) on something that is not a dict"));
        };
        for (kv, key) in pairs.chunks(2).zip(keys) {
            let (Some(&k), Some(&v)) = (kv.first(), kv.get(1)) else {
                continue;
            };
            match key.and_then(|key| match dict.index.get(&key) {
                Some(&i) => Some(i),
                None => {
                    dict.index.insert(key, dict.entries.len());
                    None
                }
            }) {
                Some(i) => {
                    if let Some(entry) = dict.entries.get_mut(i) {
                        entry.1 = v;
                    }
                }
                None => dict.entries.push((k, v)),
            }
        }
        Ok(())
    }

    /// Appends to the list or set `target`.
    fn append(&mut self, target: Value, values: Vec<Value>) -> Result<()> {
        self.charge(values.len())?;
        match self.obj_mut(target) {
            Some(Obj::List(items) | Obj::Set(items)) => {
                items.extend(values);
                Ok(())
            }
            _ => Err(self.err("APPEND(S)/ADDITEMS on something that is not a list or set")),
        }
    }

    /// Resolves a global against the allow-list.
    fn global(&mut self, module: &str, name: &str) -> Result<Value> {
        match allowed_global(module, name) {
            Some(g) => self.alloc(Obj::Global(g)),
            None => Err(Error::UnsafePickle {
                path: self.path.to_path_buf(),
                global: format!("{module}.{name}"),
            }),
        }
    }

    /// `callable(*args)` for an allowed global: builds the inert value it stands for.
    fn call(&mut self, callable: Value, args: Vec<Value>) -> Result<Value> {
        let Some(Obj::Global(global)) = self.obj(callable) else {
            return Err(self.err("calls something that is not an allowed global"));
        };
        let global = *global;
        match global {
            Global::OrderedDict | Global::Dict => {
                let pairs = match args.as_slice() {
                    [] => Vec::new(),
                    [source] => match self.obj(*source) {
                        Some(Obj::Dict(d)) => d.entries.iter().flat_map(|&(k, v)| [k, v]).collect(),
                        Some(Obj::List(items) | Obj::Tuple(items)) => {
                            let items = items.clone();
                            let mut pairs = Vec::new();
                            for item in items {
                                match self.items(item, "a dict item")?.as_slice() {
                                    [k, v] => pairs.extend([*k, *v]),
                                    _ => return Err(self.err("a dict item is not a pair")),
                                }
                            }
                            pairs
                        }
                        _ => return Err(self.err("dict() of something that is not a dict or list")),
                    },
                    _ => return Err(self.err("dict() with more than one argument")),
                };
                let dict = self.alloc(Obj::Dict(Dict::default()))?;
                self.set_items(dict, &pairs)?;
                Ok(dict)
            }
            Global::List | Global::Tuple | Global::Set | Global::FrozenSet | Global::TorchSize => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [source] => self.items(*source, "the argument of a container")?,
                    _ => return Err(self.err("a container built from more than one argument")),
                };
                self.charge(items.len())?;
                self.alloc(match global {
                    Global::List => Obj::List(items),
                    Global::Set | Global::FrozenSet => Obj::Set(items),
                    _ => Obj::Tuple(items),
                })
            }
            Global::CodecsEncode => {
                let (Some(&text), Some(&encoding)) = (args.first(), args.get(1)) else {
                    return Err(self.err("_codecs.encode needs (text, encoding)"));
                };
                let enc = self.str(encoding).unwrap_or("");
                if !matches!(enc, "latin1" | "latin-1" | "iso-8859-1") {
                    return Err(self.err(format!("_codecs.encode with encoding {enc:?}")));
                }
                let text = self
                    .str(text)
                    .ok_or_else(|| self.err("_codecs.encode of something that is not a string"))?;
                let bytes: Option<Vec<u8>> = text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).ok())
                    .collect();
                let bytes = bytes.ok_or_else(|| self.err("_codecs.encode: not latin-1 text"))?;
                self.charge(bytes.len() / 16)?;
                self.alloc(Obj::Bytes(bytes))
            }
            Global::RebuildTensor | Global::RebuildTensorV2 | Global::RebuildTensorV3 => {
                self.rebuild_tensor(global, &args)
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => {
                let data = args
                    .first()
                    .copied()
                    .ok_or_else(|| self.err("_rebuild_parameter without arguments"))?;
                match self.obj(data) {
                    Some(Obj::Tensor(_)) => Ok(data),
                    _ => Err(self.err("_rebuild_parameter of something that is not a tensor")),
                }
            }
            Global::StorageType(_) | Global::Dtype(_) => Err(self.err(
                "calls a torch storage type or dtype, which this reader only accepts as data",
            )),
        }
    }

    /// `_rebuild_tensor(storage, offset, size, stride)`,
    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`,
    /// `_rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])`.
    fn rebuild_tensor(&mut self, global: Global, args: &[Value]) -> Result<Value> {
        let (min, max) = match global {
            Global::RebuildTensor => (4, 4),
            Global::RebuildTensorV2 => (6, 7),
            _ => (7, 8),
        };
        let [storage, offset, size, stride, ..] = args else {
            return Err(self.err("a tensor rebuild with too few arguments"));
        };
        if args.len() < min || args.len() > max {
            return Err(self.err(format!(
                "a tensor rebuild with {} arguments, expected {min} to {max}",
                args.len()
            )));
        }
        let Some(Obj::Storage(storage)) = self.obj(*storage) else {
            return Err(self.err("a tensor rebuilt from something that is not a storage"));
        };
        let storage = storage.clone();
        let mut dtype = storage.dtype;
        if global == Global::RebuildTensorV3 {
            match args.get(6).and_then(|&d| self.obj(d)) {
                Some(Obj::Global(Global::Dtype(d))) => dtype = *d,
                _ => return Err(self.err("_rebuild_tensor_v3 without a dtype")),
            }
        }
        let offset = self.usize(*offset, "storage offset")?;
        let size = self.items(*size, "tensor size")?;
        let stride = self.items(*stride, "tensor stride")?;
        if size.len() != stride.len() || size.len() > MAX_RANK {
            return Err(self.err(format!(
                "tensor with {} sizes and {} strides",
                size.len(),
                stride.len()
            )));
        }
        let shape = size
            .iter()
            .map(|&v| self.usize(v, "tensor size"))
            .collect::<Result<Vec<_>>>()?;
        let stride = stride
            .iter()
            .map(|&v| self.usize(v, "tensor stride"))
            .collect::<Result<Vec<_>>>()?;
        self.charge(shape.len() * 2)?;
        self.alloc(Obj::Tensor(TensorRef {
            storage,
            dtype,
            offset,
            shape,
            stride,
        }))
    }

    /// BINPERSID: `('storage', storage_type, key, location, numel[, view_metadata])`.
    fn persistent_load(&mut self, pid: Value) -> Result<Value> {
        let items = self.items(pid, "persistent id")?;
        let typename = match items.first().and_then(|&v| self.obj(v)) {
            Some(Obj::Str(s)) => s.clone(),
            Some(Obj::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        if typename != "storage" {
            return Err(self.err(format!(
                "persistent id of kind {typename:?}; only tensor storages are supported"
            )));
        }
        let (Some(&ty), Some(&key), Some(&numel)) = (items.get(1), items.get(2), items.get(4))
        else {
            return Err(self.err("storage persistent id with too few fields"));
        };
        let Some(Obj::Global(Global::StorageType(dtype))) = self.obj(ty) else {
            return Err(self.err("storage persistent id without a storage type"));
        };
        let dtype = *dtype;
        let key = match (self.obj(key), key) {
            (Some(Obj::Str(s)), _) => s.clone(),
            (_, Value::Int(i)) => i.to_string(),
            _ => return Err(self.err("storage key is not a string")),
        };
        let numel = u64::try_from(self.int(numel, "storage size")?)
            .map_err(|_| self.err("negative storage size"))?;
        let view = match items.get(5).copied() {
            None | Some(Value::None) => None,
            Some(v) => match self.items(v, "storage view")?.as_slice() {
                [_, offset, size] => Some((
                    self.usize(*offset, "storage view offset")? as u64,
                    self.usize(*size, "storage view size")? as u64,
                )),
                _ => return Err(self.err("storage view is not (key, offset, size)")),
            },
        };
        self.alloc(Obj::Storage(StorageRef {
            key,
            dtype,
            numel,
            view,
        }))
    }

    /// A string object from raw bytes (invalid UTF-8 is replaced, as names only need to match).
    fn push_str(&mut self, bytes: &[u8]) -> Result<()> {
        self.charge(bytes.len() / 16)?;
        let s = String::from_utf8_lossy(bytes).into_owned();
        self.push_obj(Obj::Str(s))
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.charge(bytes.len() / 16)?;
        self.push_obj(Obj::Bytes(bytes.to_vec()))
    }

    /// A little-endian two's complement integer (LONG1 / LONG4).
    fn push_long(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= 8 {
            let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut a = [fill; 8];
            for (d, s) in a.iter_mut().zip(bytes) {
                *d = *s;
            }
            self.push(Value::Int(i64::from_le_bytes(a)))
        } else {
            self.charge(bytes.len() / 16)?;
            self.push_obj(Obj::BigInt(bytes.to_vec()))
        }
    }

    fn memo_get(&mut self, index: u32) -> Result<()> {
        let v = self
            .memo
            .get(&index)
            .copied()
            .ok_or_else(|| self.err(format!("memo entry {index} is not set")))?;
        self.push(v)
    }

    fn memo_put(&mut self, index: u32) -> Result<()> {
        let v = self.top()?;
        self.charge(1)?;
        self.memo.insert(index, v);
        Ok(())
    }

    fn text_int(&mut self) -> Result<i64> {
        let line = self.line()?;
        let digits = line.trim_end_matches('L');
        match digits {
            "01" => Ok(1),
            "00" => Ok(0),
            _ => digits
                .parse::<i64>()
                .map_err(|_| self.err(format!("integer {line:?} is not an i64"))),
        }
    }

    /// Runs until STOP and returns the value it pops.
    fn run(&mut self) -> Result<Value> {
        loop {
            self.op_pos = self.pos;
            let op = self.byte()?;
            match op {
                0x80 => {
                    let v = self.byte()?;
                    if v > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {v}")));
                    }
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => {
                    self.charge(1)?;
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() > floor {
                        self.pop()?;
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.push(v)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.take_array()?);
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take_array()?);
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    self.push_long(b)?;
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.take_array()?);
                    let n = usize::try_from(n).map_err(|_| self.err("negative LONG4 length"))?;
                    let b = self.take(n)?;
                    self.push_long(b)?;
                }
                b'I' => {
                    let v = self.text_int()?;
                    self.push(Value::Int(v))?;
                }
                b'L' => {
                    let v = self.text_int()?;
                    self.push(Value::Int(v))?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take_array()?);
                    self.push(Value::Float(v))?;
                }
                b'F' => {
                    let line = self.line()?;
                    let v = line
                        .parse::<f64>()
                        .map_err(|_| self.err(format!("float {line:?}")))?;
                    self.push(Value::Float(v))?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push_str(b)?;
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    self.push_str(b)?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    self.push_str(b)?;
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.take_array()?);
                    let n =
                        usize::try_from(n).map_err(|_| self.err("negative BINSTRING length"))?;
                    let b = self.take(n)?;
                    self.push_str(b)?;
                }
                b'U' => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    self.push_str(b)?;
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push_bytes(b)?;
                }
                b'C' => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    self.push_bytes(b)?;
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    self.push_bytes(b)?;
                }
                b')' => self.push_obj(Obj::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    self.push_obj(Obj::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.charge(n)?;
                    self.push_obj(Obj::Tuple(items))?;
                }
                b']' => self.push_obj(Obj::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    self.push_obj(Obj::List(items))?;
                }
                b'}' => self.push_obj(Obj::Dict(Dict::default()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = self.alloc(Obj::Dict(Dict::default()))?;
                    self.set_items(dict, &items)?;
                    self.push(dict)?;
                }
                0x8f => self.push_obj(Obj::Set(Vec::new()))?,
                0x91 => {
                    let items = self.pop_mark()?;
                    self.charge(items.len())?;
                    self.push_obj(Obj::Set(items))?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let target = self.top()?;
                    self.append(target, vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.append(target, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, &[k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.set_items(target, &items)?;
                }
                b'q' => {
                    let i = self.byte()?;
                    self.memo_put(u32::from(i))?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                b'p' => {
                    let line = self.line()?;
                    let i = line
                        .parse::<u32>()
                        .map_err(|_| self.err(format!("PUT index {line:?}")))?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| self.err("memo is full"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.byte()?;
                    self.memo_get(u32::from(i))?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b'g' => {
                    let line = self.line()?;
                    let i = line
                        .parse::<u32>()
                        .map_err(|_| self.err(format!("GET index {line:?}")))?;
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(module, name)?;
                    self.push(g)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.str(module), self.str(name)) else {
                        return Err(self.err("STACK_GLOBAL of something that is not a string"));
                    };
                    let (module, name) = (module.to_string(), name.to_string());
                    let g = self.global(&module, &name)?;
                    self.push(g)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = self.items(args, "REDUCE's arguments")?;
                    let v = self.call(callable, args)?;
                    self.push(v)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let args = self.items(args, "NEWOBJ's arguments")?;
                    let v = self.call(cls, args)?;
                    self.push(v)?;
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    match self.obj(kwargs) {
                        Some(Obj::Dict(d)) if d.entries.is_empty() => {}
                        _ => return Err(self.err("NEWOBJ_EX with keyword arguments")),
                    }
                    let args = self.items(args, "NEWOBJ_EX's arguments")?;
                    let v = self.call(cls, args)?;
                    self.push(v)?;
                }
                b'i' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let cls = self.global(module, name)?;
                    let args = self.pop_mark()?;
                    let v = self.call(cls, args)?;
                    self.push(v)?;
                }
                b'o' => {
                    let mut items = self.pop_mark()?.into_iter();
                    let cls = items
                        .next()
                        .ok_or_else(|| self.err("OBJ without a class"))?;
                    let v = self.call(cls, items.collect())?;
                    self.push(v)?;
                }
                b'b' => {
                    // The state would go to __setstate__ or __dict__; nothing here needs it
                    // (an OrderedDict's `_metadata`, a tensor's python attributes).
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.push(v)?;
                }
                _ => {
                    return Err(self.err(format!(
                        "unsupported pickle opcode 0x{op:02x} ({})",
                        opcode_name(op)
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &[u8]) -> Result<Pickle> {
        read(data, 0, Path::new("test.pkl"), "test").map(|(p, _)| p)
    }

    fn unsafe_global(data: &[u8]) -> String {
        match parse(data) {
            Err(Error::UnsafePickle { global, .. }) => global,
            other => panic!("expected UnsafePickle, got {other:?}"),
        }
    }

    #[test]
    fn weights_pickle_refuses_globals_outside_the_allow_list() {
        // GLOBAL 'posix system', 'echo pwned', TUPLE1, REDUCE, STOP
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwned\x85R.";
        assert_eq!(unsafe_global(evil), "posix.system");
        assert_eq!(
            unsafe_global(b"\x80\x02cbuiltins\neval\n."),
            "builtins.eval"
        );
        assert_eq!(
            unsafe_global(b"\x80\x02cnumpy.core.multiarray\nscalar\n."),
            "numpy.core.multiarray.scalar"
        );
        assert_eq!(
            unsafe_global(b"\x80\x02cargparse\nNamespace\n)\x81."),
            "argparse.Namespace"
        );
        // STACK_GLOBAL with 'os', 'system'
        let stack_global = b"\x80\x04\x8c\x02os\x8c\x06system\x93.";
        assert_eq!(unsafe_global(stack_global), "os.system");
        // INST
        assert_eq!(unsafe_global(b"(ios\nsystem\n."), "os.system");
        assert_eq!(unsafe_global(b"\x80\x02ctorch\nload\n."), "torch.load");
    }

    #[test]
    fn weights_pickle_reads_containers_and_memo() {
        // {'a': [1, 2.5, None], 'b': (True, -1), 'c': memo of the list}
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00a]q\x01(K\x01G@\x04\x00\x00\x00\x00\x00\x00Ne\
X\x01\x00\x00\x00b\x88J\xff\xff\xff\xff\x86X\x01\x00\x00\x00ch\x01u.";
        let p = parse(data).unwrap();
        let Some(Obj::Dict(d)) = p.obj(p.root) else {
            panic!("not a dict")
        };
        assert_eq!(d.entries.len(), 3);
        let (_, list) = d.entries[0];
        let Some(Obj::List(items)) = p.obj(list) else {
            panic!("not a list")
        };
        assert_eq!(items, &[Value::Int(1), Value::Float(2.5), Value::None]);
        assert_eq!(d.entries[2].1, list);
        let Some(Obj::Tuple(t)) = p.obj(d.entries[1].1) else {
            panic!("not a tuple")
        };
        assert_eq!(t, &[Value::Bool(true), Value::Int(-1)]);
    }

    #[test]
    fn weights_pickle_reads_big_longs() {
        let data = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
        let p = parse(data).unwrap();
        assert!(matches!(p.obj(p.root), Some(Obj::BigInt(b)) if b.len() == 10));
        let p = parse(b"\x80\x02\x8a\x02\xff\x7f.").unwrap();
        assert_eq!(p.root, Value::Int(0x7fff));
        let p = parse(b"\x80\x02\x8a\x01\xff.").unwrap();
        assert_eq!(p.root, Value::Int(-1));
    }

    #[test]
    fn weights_pickle_rejects_bad_input_without_panicking() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x80",
            b"\x80\x02",
            b"\x80\x09.",
            b".",
            b"0.",
            b"e.",
            b"(u.",
            b"K\x01K\x02u.",
            b"X\xff\xff\xff\xff",
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x8b\xff\xff\xff\xff",
            b"h\x05.",
            b"cos\n",
            b"K\x01)R.",
            b"(K\x01t(.",
            b"\x82\x01.",
            b"\x97.",
        ];
        for case in cases {
            assert!(matches!(parse(case), Err(Error::Format { .. })), "{case:?}");
        }
    }

    #[test]
    fn weights_pickle_caps_memory_of_self_referencing_pickles() {
        // A list, memoized, then appended to itself and copied by list() over and over.
        let mut data = b"\x80\x02]q\x00".to_vec();
        for _ in 0..100 {
            data.extend_from_slice(b"(h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00e");
        }
        for _ in 0..30_000 {
            data.extend_from_slice(b"c__builtin__\nlist\nh\x00\x85R0");
        }
        data.push(b'.');
        assert!(matches!(parse(&data), Err(Error::Format { .. })));
    }

    #[test]
    fn weights_pickle_rebuilds_tensors() {
        // _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 6), 1, (2, 2), (1, 2), False,
        // OrderedDict())
        let data = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage\
ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x01K\x02K\x02\x86K\x01K\x02\x86\
\x89ccollections\nOrderedDict\n)RtR.";
        let p = parse(data).unwrap();
        let Some(Obj::Tensor(t)) = p.obj(p.root) else {
            panic!("not a tensor: {:?}", p.root)
        };
        assert_eq!(t.storage.key, "0");
        assert_eq!(t.storage.numel, 6);
        assert_eq!(t.dtype, ElemType::F32);
        assert_eq!(
            (t.offset, t.shape.clone(), t.stride.clone()),
            (1, vec![2, 2], vec![1, 2])
        );
    }
}
