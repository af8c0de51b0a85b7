//! PyTorch checkpoints: the zip format of `torch.save` since 1.6, and the legacy format before
//! it (`_use_new_zipfile_serialization=False`).
//!
//! Zip: `<root>/data.pkl` is the pickle, `<root>/data/<key>` the raw storages (stored, never
//! compressed), `<root>/byteorder` says "little" or "big". The root folder's name varies.
//!
//! Legacy: a sequence of pickles (magic number, protocol version 1001, system info, the main
//! pickle, the list of storage keys), then per storage in that list an 8-byte little-endian
//! element count followed by the elements (little-endian).
//!
//! Both read the pickle with [`super::pickle`], pick the state dict with
//! [`super::state_dict::choose`] and decode only the tensors picked.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use zip::{CompressionMethod, ZipArchive};

use super::pickle::{self, Obj, StorageRef, TensorRef, Value};
use super::state_dict::{self, RawTensor, StateDict};
use crate::error::{Error, Result};

/// The legacy format's magic number, as pickle's LONG1 writes it (little-endian).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// The legacy format's protocol version.
const LEGACY_PROTOCOL: i64 = 1001;

/// Decodes the chosen tensors, fetching each storage's bytes with `storage`
/// (which returns the bytes and whether they are big-endian).
fn materialize<'a>(
    path: &Path,
    chosen: Vec<(String, &TensorRef)>,
    mut storage: impl FnMut(&StorageRef) -> Result<(&'a [u8], bool)>,
) -> Result<StateDict> {
    let mut out = StateDict::new();
    for (name, t) in chosen {
        let (bytes, big_endian) = storage(&t.storage)?;
        let raw = RawTensor {
            bytes,
            dtype: t.dtype,
            big_endian,
            offset: t.offset,
            shape: t.shape.clone(),
            stride: t.stride.clone(),
        };
        let tensor = state_dict::decode(&raw)
            .map_err(|e| Error::format(path, format!("tensor `{name}`: {e}")))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// The bytes of a stored (uncompressed) zip entry, sliced out of the archive, CRC-checked.
pub(crate) fn stored_entry<'a>(
    archive: &mut ZipArchive<Cursor<&'a [u8]>>,
    bytes: &'a [u8],
    name: &[u8],
) -> std::result::Result<Option<&'a [u8]>, String> {
    let Some(index) = archive.index_for_name_raw(name) else {
        return Ok(None);
    };
    let name = String::from_utf8_lossy(name);
    let entry = archive
        .by_index_raw(index)
        .map_err(|e| format!("zip entry {name}: {e}"))?;
    if entry.encrypted() {
        return Err(format!("zip entry {name} is encrypted"));
    }
    if entry.compression() != CompressionMethod::Stored {
        return Err(format!(
            "zip entry {name} is compressed ({:?}); torch.save stores entries uncompressed",
            entry.compression()
        ));
    }
    let size = entry.compressed_size();
    if entry.size() != size {
        return Err(format!(
            "zip entry {name}: stored size {size} differs from its size {}",
            entry.size()
        ));
    }
    let start = entry
        .data_start()
        .ok_or_else(|| format!("zip entry {name} has no data offset"))?;
    let crc = entry.crc32();
    let slice = usize::try_from(start)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(start, size)| bytes.get(start..start.checked_add(size)?))
        .ok_or_else(|| {
            format!(
                "truncated: zip entry {name} needs {size} bytes at offset {start}, the file has {}",
                bytes.len()
            )
        })?;
    if crc32fast::hash(slice) != crc {
        return Err(format!(
            "zip entry {name} fails its CRC check (corrupt file)"
        ));
    }
    Ok(Some(slice))
}

/// Opens the zip archive in `bytes`, whose first byte is the archive's own (PyTorch writes
/// nothing before it). The zip crate's default search for data prepended to an archive misreads
/// some of PyTorch's archives (torch.save and torch.export.save pad entries to 64 bytes) and
/// fails with "Invalid Central Directory header"; an archive that does have data in front is
/// still read by that search, tried second.
pub(crate) fn open_zip(bytes: &[u8]) -> zip::result::ZipResult<ZipArchive<Cursor<&[u8]>>> {
    let at_start = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    ZipArchive::with_config(at_start, Cursor::new(bytes))
        .or_else(|_| ZipArchive::new(Cursor::new(bytes)))
}

/// Loads a `torch.save` zip archive held in `bytes`.
pub(crate) fn load_zip(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let fail = |message: String| Error::format(path, message);
    let mut archive = open_zip(bytes).map_err(|e| {
        fail(format!(
            "not a readable zip archive (truncated or corrupt?): {e}"
        ))
    })?;
    let pkl_name: Vec<u8> = archive
        .file_names_raw()
        .filter(|n| *n == b"data.pkl" || n.ends_with(b"/data.pkl"))
        .min_by_key(|n| (n.len(), n.to_vec()))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| fail("zip archive without a data.pkl: not a torch.save file".into()))?;
    let prefix = pkl_name
        .strip_suffix(b"data.pkl")
        .unwrap_or_default()
        .to_vec();
    let named = |suffix: &[u8]| [prefix.as_slice(), suffix].concat();
    let pkl_text = String::from_utf8_lossy(&pkl_name).into_owned();
    if archive
        .index_for_name_raw(&named(b"constants.pkl"))
        .is_some()
    {
        return Err(fail(
            "a TorchScript archive (torch.jit.save), not a state dict; save model.state_dict() \
             with torch.save instead"
                .into(),
        ));
    }
    let big_endian = match stored_entry(&mut archive, bytes, &named(b"byteorder")).map_err(&fail)? {
        None => false,
        Some(b"little") => false,
        Some(b"big") => true,
        Some(other) => {
            return Err(fail(format!(
                "byteorder is {:?}, expected \"little\" or \"big\"",
                String::from_utf8_lossy(other)
            )))
        }
    };
    let data = stored_entry(&mut archive, bytes, &pkl_name)
        .map_err(&fail)?
        .ok_or_else(|| fail(format!("{pkl_text} is missing")))?;
    let (pickle, _) = pickle::read(data, 0, path, &pkl_text)?;
    let chosen = state_dict::choose(&pickle).map_err(&fail)?;
    let mut cache: HashMap<String, &[u8]> = HashMap::new();
    materialize(path, chosen, |s| {
        if let Some(&b) = cache.get(&s.key) {
            return Ok((b, big_endian));
        }
        let name = named(format!("data/{}", s.key).as_bytes());
        let b = stored_entry(&mut archive, bytes, &name)
            .map_err(&fail)?
            .ok_or_else(|| {
                fail(format!(
                    "storage {} ({}) is missing",
                    s.key,
                    String::from_utf8_lossy(&name)
                ))
            })?;
        cache.insert(s.key.clone(), b);
        Ok((b, big_endian))
    })
}

/// Loads a legacy (pre-1.6) PyTorch checkpoint held in `bytes`.
pub(crate) fn load_legacy(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let fail = |message: String| Error::format(path, message);
    let (magic, pos) = pickle::read(bytes, 0, path, "legacy header (magic number)")?;
    match magic.obj(magic.root) {
        Some(Obj::BigInt(b)) if b.as_slice() == LEGACY_MAGIC => {}
        _ => {
            return Err(fail(
                "a pickle, but not a PyTorch checkpoint: it does not start with torch's magic \
                 number"
                    .into(),
            ))
        }
    }
    let (version, pos) = pickle::read(bytes, pos, path, "legacy header (protocol version)")?;
    if version.root != Value::Int(LEGACY_PROTOCOL) {
        return Err(fail(format!(
            "legacy protocol version {:?}, expected {LEGACY_PROTOCOL}",
            version.root
        )));
    }
    let (_sys_info, pos) = pickle::read(bytes, pos, path, "legacy header (system info)")?;
    let (main, pos) = pickle::read(bytes, pos, path, "main pickle")?;
    let (keys, mut pos) = pickle::read(bytes, pos, path, "storage key list")?;
    let key_list: Vec<String> = match keys.obj(keys.root) {
        Some(Obj::List(items) | Obj::Tuple(items)) => items
            .iter()
            .map(|&v| {
                keys.str(v)
                    .map(str::to_string)
                    .ok_or_else(|| fail("the storage key list holds a non-string".into()))
            })
            .collect::<Result<_>>()?,
        _ => return Err(fail("the storage key list is not a list".into())),
    };

    // The element size of each root storage is that of the first storage pickled with its key.
    let mut elem_size: HashMap<&str, usize> = HashMap::new();
    for obj in &main.objs {
        let storage = match obj {
            Obj::Storage(s) => s,
            Obj::Tensor(t) => &t.storage,
            _ => continue,
        };
        elem_size
            .entry(storage.key.as_str())
            .or_insert(storage.dtype.size());
    }
    let mut storages: HashMap<&str, &[u8]> = HashMap::new();
    for (i, key) in key_list.iter().enumerate() {
        let size = *elem_size.get(key.as_str()).ok_or_else(|| {
            fail(format!(
                "storage {i} (key {key}) is listed but no tensor uses it"
            ))
        })?;
        let left = bytes.len().saturating_sub(pos);
        let count = bytes
            .get(pos..pos + 8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                i64::from_le_bytes(a)
            })
            .ok_or_else(|| {
                fail(format!(
                    "truncated: storage {i} (key {key}) needs an 8-byte element count, {left} \
                     bytes left"
                ))
            })?;
        pos += 8;
        let left = left - 8;
        let needed = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(size))
            .ok_or_else(|| {
                fail(format!(
                    "storage {i} (key {key}): bad element count {count}"
                ))
            })?;
        if needed > left {
            return Err(fail(format!(
                "truncated: storage {i} (key {key}) needs {needed} bytes, {left} left"
            )));
        }
        let data = bytes
            .get(pos..pos + needed)
            .ok_or_else(|| fail(format!("truncated: storage {i} (key {key})")))?;
        pos += needed;
        storages.insert(key.as_str(), data);
    }

    let chosen = state_dict::choose(&main).map_err(&fail)?;
    materialize(path, chosen, |s| {
        let root = storages.get(s.key.as_str()).copied().ok_or_else(|| {
            fail(format!(
                "storage {} is used but not in the storage list",
                s.key
            ))
        })?;
        let Some((offset, count)) = s.view else {
            return Ok((root, false));
        };
        let size = s.dtype.size() as u64;
        let view = offset
            .checked_mul(size)
            .zip(count.checked_mul(size))
            .and_then(|(start, len)| {
                Some((usize::try_from(start).ok()?, usize::try_from(len).ok()?))
            })
            .and_then(|(start, len)| root.get(start..start.checked_add(len)?))
            .ok_or_else(|| {
                fail(format!(
                    "storage view of {} (offset {offset}, {count} elements) is outside its \
                     storage of {} bytes",
                    s.key,
                    root.len()
                ))
            })?;
        Ok((view, false))
    })
}

/// Whether `bytes` start like a legacy checkpoint: a protocol 2+ pickle of a LONG1.
pub(crate) fn looks_legacy(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x80)
}
