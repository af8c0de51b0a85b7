//! The training-side twins of `small-vgg` and `small-resnet`, built from candle-nn layers whose
//! variables carry the engine's (PyTorch's) state_dict names, so that a saved VarMap loads with
//! `Model::load` as is. In evaluation mode they compute what the engine's graphs compute.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Linear, VarBuilder};

use super::conv::ConvGeometry;
use crate::arch::{small_resnet, small_vgg};
use crate::{Error, Result};

/// The architectures that can be trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallArch {
    /// `small-vgg`.
    Vgg,
    /// `small-resnet`.
    Resnet,
}

impl SmallArch {
    /// The `--arch` name.
    pub fn name(self) -> &'static str {
        match self {
            SmallArch::Vgg => small_vgg::NAME,
            SmallArch::Resnet => small_resnet::NAME,
        }
    }

    /// The architecture named `name`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            n if n == small_vgg::NAME => Ok(SmallArch::Vgg),
            n if n == small_resnet::NAME => Ok(SmallArch::Resnet),
            other => Err(Error::InvalidArgument(format!(
                "cannot train `{other}`; trainable architectures: {}, {}",
                small_vgg::NAME,
                small_resnet::NAME
            ))),
        }
    }
}

/// A bias-free conv followed by a BatchNorm2d (each under its own state_dict prefix).
struct ConvBn {
    weight: Tensor,
    geometry: ConvGeometry,
    bn: BatchNorm,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        eps: f64,
        conv: VarBuilder,
        bn: VarBuilder,
    ) -> candle_core::Result<Self> {
        let bn_config = BatchNormConfig {
            eps,
            ..Default::default()
        };
        let shape = (out_channels, in_channels, kernel, kernel);
        Ok(ConvBn {
            weight: conv.get_with_hints(
                shape,
                "weight",
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?,
            geometry: ConvGeometry { stride, padding },
            bn: candle_nn::batch_norm(out_channels, bn_config, bn)?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.bn
            .forward_t(&self.geometry.forward(x, &self.weight)?, train)
    }
}

/// An entry of small-vgg's `features`.
enum VggLayer {
    ConvBnRelu(ConvBn),
    Pool,
}

/// torchvision's `BasicBlock`.
struct BasicBlock {
    first: ConvBn,
    second: ConvBn,
    downsample: Option<ConvBn>,
}

impl BasicBlock {
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let eps = small_resnet::BN_EPS;
        let first = ConvBn::new(
            inplanes,
            planes,
            3,
            stride,
            1,
            eps,
            vb.pp("conv1"),
            vb.pp("bn1"),
        )?;
        let second = ConvBn::new(planes, planes, 3, 1, 1, eps, vb.pp("conv2"), vb.pp("bn2"))?;
        let downsample = if stride != 1 || inplanes != planes {
            let d = vb.pp("downsample");
            Some(ConvBn::new(
                inplanes,
                planes,
                1,
                stride,
                0,
                eps,
                d.pp("0"),
                d.pp("1"),
            )?)
        } else {
            None
        };
        Ok(BasicBlock {
            first,
            second,
            downsample,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let out = self.first.forward_t(x, train)?.relu()?;
        let out = self.second.forward_t(&out, train)?;
        let identity = match &self.downsample {
            Some(d) => d.forward_t(x, train)?,
            None => x.clone(),
        };
        (out + identity)?.relu()
    }
}

/// The layers before the pooled head.
enum Body {
    Vgg(Vec<VggLayer>),
    Resnet {
        stem: ConvBn,
        blocks: Vec<BasicBlock>,
    },
}

/// A trainable small-vgg or small-resnet.
pub struct TrainNet {
    body: Body,
    fc: Linear,
}

impl TrainNet {
    /// The network `arch` with `num_classes` outputs, its variables created in `vb`.
    pub fn new(arch: SmallArch, num_classes: usize, vb: VarBuilder) -> Result<Self> {
        let (body, head) = match arch {
            SmallArch::Vgg => (Self::vgg(vb.pp("features"))?, small_vgg::HEAD_CHANNELS),
            SmallArch::Resnet => Self::resnet(&vb)?,
        };
        let fc = candle_nn::linear(head, num_classes, vb.pp("fc"))?;
        Ok(TrainNet { body, fc })
    }

    fn vgg(vb: VarBuilder) -> candle_core::Result<Body> {
        let mut layers = Vec::new();
        let mut index = 0usize;
        let mut in_channels = small_vgg::IN_CHANNELS;
        for layer in small_vgg::FEATURES {
            match layer {
                small_vgg::Layer::Pool => {
                    layers.push(VggLayer::Pool);
                    index += 1;
                }
                small_vgg::Layer::Conv(v) => {
                    let conv = ConvBn::new(
                        in_channels,
                        v,
                        3,
                        1,
                        1,
                        small_vgg::BN_EPS,
                        vb.pp(index),
                        vb.pp(index + 1),
                    )?;
                    layers.push(VggLayer::ConvBnRelu(conv));
                    index += 3;
                    in_channels = v;
                }
            }
        }
        Ok(Body::Vgg(layers))
    }

    fn resnet(vb: &VarBuilder) -> candle_core::Result<(Body, usize)> {
        let stem = ConvBn::new(
            small_resnet::IN_CHANNELS,
            small_resnet::STEM_CHANNELS,
            3,
            1,
            1,
            small_resnet::BN_EPS,
            vb.pp("conv1"),
            vb.pp("bn1"),
        )?;
        let mut blocks = Vec::new();
        let mut inplanes = small_resnet::STEM_CHANNELS;
        for (stage, &(planes, stride)) in small_resnet::STAGES.iter().enumerate() {
            let layer = vb.pp(format!("layer{}", stage + 1));
            for i in 0..small_resnet::BLOCKS_PER_STAGE {
                let s = if i == 0 { stride } else { 1 };
                blocks.push(BasicBlock::new(inplanes, planes, s, layer.pp(i))?);
                inplanes = planes;
            }
        }
        Ok((Body::Resnet { stem, blocks }, inplanes))
    }

    /// Logits [N, classes] for images [N, 1, 28, 28]; `train` selects batch statistics (and
    /// updates the running ones) instead of the running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let features = match &self.body {
            Body::Vgg(layers) => {
                let mut x = x.clone();
                for layer in layers {
                    x = match layer {
                        VggLayer::ConvBnRelu(c) => c.forward_t(&x, train)?.relu()?,
                        VggLayer::Pool => x.max_pool2d(2)?,
                    };
                }
                x
            }
            Body::Resnet { stem, blocks } => {
                let mut x = stem.forward_t(x, train)?.relu()?;
                for block in blocks {
                    x = block.forward_t(&x, train)?;
                }
                x
            }
        };
        let pooled = features.mean((2, 3))?;
        Ok(self.fc.forward(&pooled)?)
    }
}
