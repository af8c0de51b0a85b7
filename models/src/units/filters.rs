//! A convolution's kernels: per-filter statistics (norms, dead filters) and the picture of the
//! weights, the first layer's as RGB tiles (the AlexNet figure), a deeper layer's as one gray
//! tile per filter and input channel.

use candle_core::DType;
use image::RgbImage;
use serde::Serialize;

use super::array::HostArray;
use super::tiles::{enlarged_tile, square_columns, to_byte, upscale_factor, TILE_GAP};
use crate::graph::{Graph, NodeId};
use crate::ops::{Conv2d, Op, Padding};
use crate::render::grid;
use crate::{Error, Result};

/// One filter's numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelStats {
    /// Output channel.
    pub filter: usize,
    /// √Σw².
    pub l2_norm: f32,
    /// Mean weight.
    pub mean: f32,
    /// Smallest weight.
    pub min: f32,
    /// Largest weight.
    pub max: f32,
    /// `l2_norm` times |γ/√(σ²+ε)| of the BatchNorm2d that alone reads the convolution (what
    /// the filter's output is really scaled by); `None` without such a BatchNorm.
    pub effective_norm: Option<f32>,
    /// Whether the filter is dead: its (effective) norm is at most `dead_ratio` times the
    /// layer's median.
    pub dead: bool,
}

/// The layer's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FilterStats {
    /// Smallest filter norm (effective norm when a BatchNorm follows).
    pub norm_min: f32,
    /// Median filter norm.
    pub norm_median: f32,
    /// Mean filter norm.
    pub norm_mean: f32,
    /// Largest filter norm.
    pub norm_max: f32,
    /// A filter is dead when its norm is at most this fraction of the median.
    pub dead_ratio: f32,
    /// The dead filters.
    pub dead: Vec<usize>,
    /// Whether the norms are the BatchNorm-scaled effective norms.
    pub batch_norm_scaled: bool,
}

/// A convolution layer's kernels and their statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FilterBank {
    /// The layer.
    pub layer: String,
    /// Output channels.
    pub out_channels: usize,
    /// Input channels (all groups).
    pub in_channels: usize,
    /// Groups.
    pub groups: usize,
    /// Kernel height and width.
    pub kernel_size: (usize, usize),
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding, as `[top, bottom, left, right]` or `same`.
    pub padding: String,
    /// Whether the kernels are drawn as RGB tiles (3 input channels per group, one group).
    pub rgb: bool,
    /// The layer's summary.
    pub stats: FilterStats,
    /// Every filter's numbers.
    pub filters: Vec<KernelStats>,
    /// The kernel, [out_channels, in_channels / groups, kh, kw].
    pub weights: HostArray,
}

/// The convolution `layer` (the network's first convolution when `None`) with its statistics;
/// a filter is dead when its norm is at most `dead_ratio` × the layer's median norm.
pub fn conv_filters(graph: &Graph, layer: Option<&str>, dead_ratio: f32) -> Result<FilterBank> {
    let id = match layer {
        Some(name) => conv_node(graph, name)?,
        None => first_conv(graph).ok_or_else(|| {
            Error::InvalidArgument("the model has no Conv2d layer to show".into())
        })?,
    };
    let Op::Conv2d(conv) = &graph.nodes()[id].op else {
        return Err(Error::InvalidArgument(format!(
            "`{}` is not a convolution",
            graph.name(id)
        )));
    };
    let (out, per_group, kh, kw) = conv.weight.dims4()?;
    let weight = conv.weight.to_dtype(DType::F32)?;
    let flat = weight.reshape((out, per_group * kh * kw))?;
    let l2: Vec<f32> = flat.sqr()?.sum(1)?.sqrt()?.to_vec1()?;
    let mean: Vec<f32> = flat.mean(1)?.to_vec1()?;
    let min: Vec<f32> = flat.min(1)?.to_vec1()?;
    let max: Vec<f32> = flat.max(1)?.to_vec1()?;
    let bn_scale = batch_norm_scale(graph, id)?;
    let norms: Vec<f32> = match &bn_scale {
        Some(s) => l2.iter().zip(s).map(|(n, s)| n * s.abs()).collect(),
        None => l2.clone(),
    };
    let mut sorted = norms.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let threshold = dead_ratio * median;
    let filters: Vec<KernelStats> = (0..out)
        .map(|f| KernelStats {
            filter: f,
            l2_norm: l2[f],
            mean: mean[f],
            min: min[f],
            max: max[f],
            effective_norm: bn_scale.as_ref().map(|s| l2[f] * s[f].abs()),
            dead: norms[f] <= threshold,
        })
        .collect();
    let stats = FilterStats {
        norm_min: sorted.first().copied().unwrap_or(0.0),
        norm_median: median,
        norm_mean: norms.iter().sum::<f32>() / out.max(1) as f32,
        norm_max: sorted.last().copied().unwrap_or(0.0),
        dead_ratio,
        dead: filters
            .iter()
            .filter(|f| f.dead)
            .map(|f| f.filter)
            .collect(),
        batch_norm_scaled: bn_scale.is_some(),
    };
    Ok(FilterBank {
        layer: graph.name(id).to_string(),
        out_channels: out,
        in_channels: conv.in_channels(),
        groups: conv.groups,
        kernel_size: (kh, kw),
        stride: conv.stride,
        dilation: conv.dilation,
        padding: padding_name(conv),
        rgb: per_group == 3 && conv.groups == 1,
        stats,
        filters,
        weights: HostArray::from_tensor(&weight)?,
    })
}

fn first_conv(graph: &Graph) -> Option<NodeId> {
    graph
        .nodes()
        .iter()
        .position(|n| matches!(n.op, Op::Conv2d(_)))
}

/// The Conv2d node `name`, or an error that names convolutions near it.
fn conv_node(graph: &Graph, name: &str) -> Result<NodeId> {
    let id = graph.node_id(name)?;
    if matches!(graph.nodes()[id].op, Op::Conv2d(_)) {
        return Ok(id);
    }
    let prefix = format!("{name}.");
    let inside: Vec<&str> = graph
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, Op::Conv2d(_)) && n.name.starts_with(&prefix))
        .map(|n| n.name.as_str())
        .take(3)
        .collect();
    let hint = if inside.is_empty() {
        first_conv(graph)
            .map(|c| format!(" (the first is `{}`)", graph.name(c)))
            .unwrap_or_default()
    } else {
        format!("; the convolutions in it: {}", inside.join(", "))
    };
    Err(Error::InvalidArgument(format!(
        "layer `{name}` is {}, not a convolution: filters are the kernels of Conv2d layers{hint}",
        article(graph.nodes()[id].op.class_name())
    )))
}

fn article(class: &str) -> String {
    if class == "Module" || class.is_empty() {
        return "a module".into();
    }
    match class.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => format!("an {class}"),
        _ => format!("a {class}"),
    }
}

/// |γ/√(σ²+ε)| per channel of the BatchNorm2d that is the convolution's only reader.
fn batch_norm_scale(graph: &Graph, conv: NodeId) -> Result<Option<Vec<f32>>> {
    let [reader] = graph.consumers(conv)[..] else {
        return Ok(None);
    };
    let Op::BatchNorm2d(bn) = &graph.nodes()[reader].op else {
        return Ok(None);
    };
    let scale = bn.weight.to_dtype(DType::F32)?.div(
        &bn.running_var
            .to_dtype(DType::F32)?
            .affine(1.0, bn.eps)?
            .sqrt()?,
    )?;
    Ok(Some(scale.to_vec1()?))
}

fn padding_name(conv: &Conv2d) -> String {
    match conv.padding {
        Padding::Same => "same".into(),
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => format!("[{top}, {bottom}, {left}, {right}]"),
    }
}

/// How many filters and input channels a filter grid shows.
#[derive(Clone, Copy, Debug)]
pub struct FilterGridOptions {
    /// Filters shown (the first ones).
    pub max_filters: usize,
    /// Input channels shown per filter in a gray grid (the first ones).
    pub max_inputs: usize,
}

impl Default for FilterGridOptions {
    fn default() -> Self {
        FilterGridOptions {
            max_filters: 64,
            max_inputs: 32,
        }
    }
}

/// Where each tile of a filter grid comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterGridLayout {
    /// Tiles per row of the grid.
    pub columns: usize,
    /// Each kernel cell is drawn as a `factor`×`factor` block.
    pub factor: u32,
    /// Per tile in grid order: the filter and, for a gray tile, its input channel (`None`: an
    /// RGB tile of the filter's three input channels).
    pub tiles: Vec<(usize, Option<usize>)>,
}

impl FilterBank {
    /// The tiles a grid with `options` shows and how they are laid out: RGB tiles in a square
    /// grid; gray tiles one row per filter and one column per input channel, or a square grid
    /// when each filter has a single input channel (depthwise).
    pub fn grid_layout(&self, options: FilterGridOptions) -> FilterGridLayout {
        let per_group = self.weights.shape.get(1).copied().unwrap_or(1);
        let filters = self.out_channels.min(options.max_filters.max(1));
        let inputs = per_group.min(options.max_inputs.max(1));
        let (kh, kw) = self.kernel_size;
        let factor = upscale_factor(kh, kw);
        if self.rgb {
            return FilterGridLayout {
                columns: square_columns(filters),
                factor,
                tiles: (0..filters).map(|f| (f, None)).collect(),
            };
        }
        if per_group == 1 {
            return FilterGridLayout {
                columns: square_columns(filters),
                factor,
                tiles: (0..filters).map(|f| (f, Some(0))).collect(),
            };
        }
        FilterGridLayout {
            columns: inputs,
            factor,
            tiles: (0..filters)
                .flat_map(|f| (0..inputs).map(move |c| (f, Some(c))))
                .collect(),
        }
    }

    /// max|w| over filter `f`'s whole kernel (all its input channels): the symmetric scale its
    /// tiles share.
    pub fn filter_scale(&self, f: usize) -> f32 {
        let size: usize = self.weights.shape.iter().skip(1).product();
        self.weights
            .data
            .get(f * size..(f + 1) * size)
            .map_or(0.0, |w| w.iter().fold(0f32, |m, v| m.max(v.abs())))
    }
}

/// A weight as a colour level in [0, 1] for a filter whose largest magnitude is `scale`:
/// 0.5 + 0.5·w / scale, so zero is mid-gray and ±scale reach white or black (0.5 when the
/// filter is all zeros).
pub fn symmetric_level(w: f32, scale: f32) -> f32 {
    if scale > 0.0 {
        0.5 + 0.5 * w / scale
    } else {
        0.5
    }
}

/// The picture of the kernels: see [`FilterBank::grid_layout`] for which tiles and where.
pub fn render_filter_grid(bank: &FilterBank, options: FilterGridOptions) -> RgbImage {
    let layout = bank.grid_layout(options);
    let (kh, kw) = bank.kernel_size;
    let w = &bank.weights;
    let tiles: Vec<RgbImage> = layout
        .tiles
        .iter()
        .map(|&(f, channel)| {
            let scale = bank.filter_scale(f);
            let level = |c: usize, y: usize, x: usize| {
                to_byte(symmetric_level(w.at(&[f, c, y, x]).unwrap_or(0.0), scale))
            };
            enlarged_tile(kh, kw, layout.factor, |y, x| match channel {
                None => [level(0, y, x), level(1, y, x), level(2, y, x)],
                Some(c) => {
                    let g = level(c, y, x);
                    [g, g, g]
                }
            })
        })
        .collect();
    grid(&tiles, layout.columns, TILE_GAP)
}
