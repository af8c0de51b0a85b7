//! The explanation methods by name, and the Integrated Gradients baselines.

use crate::{Error, Result};

/// Whether a method's map lives in input space or at a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// [C, H, W] in the input's space.
    Attribution,
    /// [h, w] at a layer (guided Grad-CAM excepted, which is [C, H, W]).
    Cam,
}

/// An explanation method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// ∂y_c/∂x, signed.
    Gradient,
    /// |∂y_c/∂x| (Simonyan et al. 2014; Captum `Saliency`).
    Saliency,
    /// x · ∂y_c/∂x (Captum `InputXGradient`).
    InputXGradient,
    /// Mean gradient over noisy copies (Smilkov et al. 2017; Captum `NoiseTunnel`).
    SmoothGrad,
    /// Mean squared gradient over noisy copies.
    SmoothGradSq,
    /// Variance of the gradient over noisy copies.
    VarGrad,
    /// Integrated Gradients (Sundararajan et al. 2017), Gauss–Legendre.
    IntegratedGradients,
    /// Guided backpropagation (Springenberg et al. 2015).
    GuidedBackprop,
    /// Deconvnet (Zeiler & Fergus 2014).
    Deconvnet,
    /// Occlusion (Zeiler & Fergus 2014; Captum `Occlusion`).
    Occlusion,
    /// Class activation mapping (Zhou et al. 2016).
    Cam,
    /// Grad-CAM (Selvaraju et al. 2017).
    GradCam,
    /// Grad-CAM++ (Chattopadhay et al. 2018), pytorch-grad-cam's closed form.
    GradCamPlusPlus,
    /// XGrad-CAM (Fu et al. 2020).
    XGradCam,
    /// HiRes-CAM (Draelos & Carin 2020).
    HiResCam,
    /// Layer-CAM (Jiang et al. 2021).
    LayerCam,
    /// Score-CAM (Wang et al. 2020).
    ScoreCam,
    /// Ablation-CAM (Desai & Ramaswamy 2020).
    AblationCam,
    /// Eigen-CAM (Muhammad & Yeasin 2020).
    EigenCam,
    /// Guided backprop × upsampled Grad-CAM.
    GuidedGradCam,
}

const NAMES: &[(Method, &str)] = &[
    (Method::Gradient, "gradient"),
    (Method::Saliency, "saliency"),
    (Method::InputXGradient, "input-x-gradient"),
    (Method::SmoothGrad, "smoothgrad"),
    (Method::SmoothGradSq, "smoothgrad-sq"),
    (Method::VarGrad, "vargrad"),
    (Method::IntegratedGradients, "integrated-gradients"),
    (Method::GuidedBackprop, "guided-backprop"),
    (Method::Deconvnet, "deconvnet"),
    (Method::Occlusion, "occlusion"),
    (Method::Cam, "cam"),
    (Method::GradCam, "gradcam"),
    (Method::GradCamPlusPlus, "gradcam++"),
    (Method::XGradCam, "xgradcam"),
    (Method::HiResCam, "hirescam"),
    (Method::LayerCam, "layercam"),
    (Method::ScoreCam, "scorecam"),
    (Method::AblationCam, "ablationcam"),
    (Method::EigenCam, "eigencam"),
    (Method::GuidedGradCam, "guided-gradcam"),
];

impl Method {
    /// Every method, in display order.
    pub fn all() -> Vec<Method> {
        NAMES.iter().map(|(m, _)| *m).collect()
    }

    /// The `--method` name.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("?", |(_, n)| n)
    }

    /// Parses a `--method` name.
    pub fn from_name(name: &str) -> Result<Method> {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(m, _)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
                Error::InvalidArgument(format!(
                    "unknown method `{name}`; known: {}",
                    names.join(", ")
                ))
            })
    }

    /// Where the method's map lives.
    pub fn kind(self) -> MethodKind {
        match self {
            Method::Cam
            | Method::GradCam
            | Method::GradCamPlusPlus
            | Method::XGradCam
            | Method::HiResCam
            | Method::LayerCam
            | Method::ScoreCam
            | Method::AblationCam
            | Method::EigenCam
            | Method::GuidedGradCam => MethodKind::Cam,
            _ => MethodKind::Attribution,
        }
    }
}

/// The reference input of Integrated Gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// Zeros in the model's input space (Captum's default).
    Zero,
    /// The input blurred (Gaussian, σ = 5 px in each axis... see `integrated_gradients`).
    Blur,
    /// Uniform noise over the input's range, from the seed.
    Noise,
}

impl Baseline {
    /// Parses a `--baseline` name.
    pub fn from_name(name: &str) -> Result<Baseline> {
        match name {
            "zero" => Ok(Baseline::Zero),
            "blur" => Ok(Baseline::Blur),
            "noise" => Ok(Baseline::Noise),
            other => Err(Error::InvalidArgument(format!(
                "unknown baseline `{other}`; known: zero, blur, noise"
            ))),
        }
    }
}
