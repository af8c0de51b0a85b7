//! The explanation methods, where each one's map lives, and a selection of one method or all.

use super::{closed_set, UnknownName};

closed_set! {
    /// An explanation method.
    Method, "method" {
        /// ∂y_c/∂x, signed.
        Gradient = "gradient",
        /// |∂y_c/∂x| (Simonyan et al. 2014; Captum `Saliency`).
        Saliency = "saliency",
        /// x · ∂y_c/∂x (Captum `InputXGradient`).
        InputXGradient = "input-x-gradient",
        /// Mean gradient over noisy copies (Smilkov et al. 2017; Captum `NoiseTunnel`).
        SmoothGrad = "smoothgrad",
        /// Mean squared gradient over noisy copies.
        SmoothGradSq = "smoothgrad-sq",
        /// Variance of the gradient over noisy copies.
        VarGrad = "vargrad",
        /// Integrated Gradients (Sundararajan et al. 2017), Gauss–Legendre.
        IntegratedGradients = "integrated-gradients",
        /// Guided backpropagation (Springenberg et al. 2015).
        GuidedBackprop = "guided-backprop",
        /// Deconvnet (Zeiler & Fergus 2014).
        Deconvnet = "deconvnet",
        /// Occlusion (Zeiler & Fergus 2014; Captum `Occlusion`).
        Occlusion = "occlusion",
        /// Class activation mapping (Zhou et al. 2016).
        Cam = "cam",
        /// Grad-CAM (Selvaraju et al. 2017).
        GradCam = "gradcam",
        /// Grad-CAM++ (Chattopadhay et al. 2018), pytorch-grad-cam's closed form.
        GradCamPlusPlus = "gradcam++",
        /// XGrad-CAM (Fu et al. 2020).
        XGradCam = "xgradcam",
        /// HiRes-CAM (Draelos & Carin 2020).
        HiResCam = "hirescam",
        /// Layer-CAM (Jiang et al. 2021).
        LayerCam = "layercam",
        /// Score-CAM (Wang et al. 2020).
        ScoreCam = "scorecam",
        /// Ablation-CAM (Desai & Ramaswamy 2020).
        AblationCam = "ablationcam",
        /// Eigen-CAM (Muhammad & Yeasin 2020).
        EigenCam = "eigencam",
        /// Guided backprop × upsampled Grad-CAM.
        GuidedGradCam = "guided-gradcam",
    }
}

/// Whether a method's map lives in input space or at a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// [C, H, W] in the input's space.
    Attribution,
    /// [h, w] at a layer (guided Grad-CAM excepted, which is [C, H, W]).
    Cam,
}

impl Method {
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

/// The name that selects every method.
const ALL_NAME: &str = "all";

/// One method, or `all` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodSelection {
    /// One method.
    One(Method),
    /// Every method, in display order.
    All,
}

impl MethodSelection {
    /// Every name it takes: the methods', then `all`.
    pub fn names() -> Vec<&'static str> {
        let mut names = Method::NAMES.to_vec();
        names.push(ALL_NAME);
        names
    }

    /// The methods selected.
    pub fn methods(self) -> &'static [Method] {
        match self {
            MethodSelection::One(m) => {
                let at = Method::ALL.iter().position(|x| *x == m).unwrap_or(0);
                &Method::ALL[at..=at]
            }
            MethodSelection::All => Method::ALL,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            MethodSelection::One(m) => m.name(),
            MethodSelection::All => ALL_NAME,
        }
    }
}

impl From<Method> for MethodSelection {
    fn from(m: Method) -> Self {
        MethodSelection::One(m)
    }
}

impl std::str::FromStr for MethodSelection {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, UnknownName> {
        if text == ALL_NAME {
            return Ok(MethodSelection::All);
        }
        text.parse()
            .map(MethodSelection::One)
            .map_err(|_| UnknownName {
                what: "method",
                name: text.to_string(),
                known: MethodSelection::names(),
            })
    }
}

impl std::fmt::Display for MethodSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for MethodSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for MethodSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
