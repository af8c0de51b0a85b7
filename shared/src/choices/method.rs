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
        /// DeepLift's rescale rule (Shrikumar et al. 2017; Captum `DeepLift`) from the baseline.
        DeepLift = "deeplift",
        /// DeepLift averaged over a distribution of baselines (Captum `DeepLiftShap`).
        DeepLiftShap = "deeplift-shap",
        /// Gradients × differences at random points between noisy inputs and baselines drawn
        /// from a distribution (Lundberg & Lee 2017; Captum `GradientShap`).
        GradientShap = "gradient-shap",
        /// LRP (Bach et al. 2015), zennit's `EpsilonPlusFlat`: flat at the first layer, z⁺ at
        /// the convolutions, ε at the fully connected layers.
        LrpEpsilonPlusFlat = "lrp-epsilon-plus-flat",
        /// LRP, zennit's `EpsilonGammaBox`: z^B (the input's box) at the first convolution,
        /// γ = 0.25 at the others, ε at the fully connected layers.
        LrpEpsilonGammaBox = "lrp-epsilon-gamma-box",
        /// LRP, zennit's `EpsilonAlpha2Beta1`: α = 2, β = 1 at the convolutions, ε at the fully
        /// connected layers.
        LrpEpsilonAlpha2Beta1 = "lrp-epsilon-alpha2-beta1",
        /// Guided backpropagation (Springenberg et al. 2015).
        GuidedBackprop = "guided-backprop",
        /// Deconvnet (Zeiler & Fergus 2014).
        Deconvnet = "deconvnet",
        /// Occlusion (Zeiler & Fergus 2014; Captum `Occlusion`).
        Occlusion = "occlusion",
        /// RISE (Petsiuk et al. 2018): random masks weighted by the class's probability.
        Rise = "rise",
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
        /// pytorch-grad-cam's Eigen-Grad-CAM: the first principal component of gradients ×
        /// activations.
        EigenGradCam = "eigengradcam",
        /// pytorch-grad-cam's element-wise Grad-CAM: Σ_k ReLU(∂y/∂A_k · A_k).
        GradCamElementWise = "gradcam-elementwise",
        /// KPCA-CAM (Karmani et al. 2024): the activations' first sigmoid-kernel principal
        /// component, as pytorch-grad-cam computes it with scikit-learn's KernelPCA.
        KpcaCam = "kpcacam",
        /// FullGrad (Srinivas & Fleuret 2019), pytorch-grad-cam's: |input × gradient| plus
        /// every bias layer's |bias × gradient|, channel by channel min–max scaled and summed at
        /// the input's resolution.
        FullGrad = "fullgrad",
        /// Guided backprop × upsampled Grad-CAM.
        GuidedGradCam = "guided-gradcam",
    }
}

/// Whether a method's map lives in input space or at a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// [C, H, W] in the input's space (RISE and FullGrad: [H, W]).
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
            | Method::EigenGradCam
            | Method::GradCamElementWise
            | Method::KpcaCam
            | Method::GuidedGradCam => MethodKind::Cam,
            _ => MethodKind::Attribution,
        }
    }
}

impl Method {
    /// How much work the method is, as a rank (0 cheapest): a forward pass already made, one
    /// backward pass, two, a pass per noisy copy (SmoothGrad's samples), per step (Integrated
    /// Gradients), per channel (Score-CAM, Ablation-CAM), per occluded window, per random mask
    /// (RISE's thousands). LRP is one backward pass that runs each layer two to eight times. `all` runs the methods in this order, so the first results come in
    /// seconds.
    pub fn cost(self) -> u8 {
        match self {
            Method::Cam | Method::EigenCam | Method::KpcaCam => 0,
            Method::Gradient
            | Method::Saliency
            | Method::InputXGradient
            | Method::GuidedBackprop
            | Method::Deconvnet
            | Method::GradCam
            | Method::GradCamPlusPlus
            | Method::XGradCam
            | Method::HiResCam
            | Method::LayerCam
            | Method::EigenGradCam
            | Method::GradCamElementWise
            | Method::FullGrad => 1,
            Method::GuidedGradCam
            | Method::DeepLift
            | Method::LrpEpsilonPlusFlat
            | Method::LrpEpsilonGammaBox
            | Method::LrpEpsilonAlpha2Beta1 => 2,
            Method::SmoothGrad
            | Method::SmoothGradSq
            | Method::VarGrad
            | Method::DeepLiftShap
            | Method::GradientShap => 3,
            Method::IntegratedGradients => 4,
            Method::ScoreCam | Method::AblationCam => 5,
            Method::Occlusion => 6,
            Method::Rise => 7,
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

    /// The methods selected in the order they are run: the cheapest first ([`Method::cost`]),
    /// display order among equals.
    pub fn run_order(self) -> Vec<Method> {
        let mut methods = self.methods().to_vec();
        methods.sort_by_key(|m| m.cost());
        methods
    }

    /// Where `method` stands in display order (for putting results back in it).
    pub fn display_rank(method: Method) -> usize {
        Method::ALL
            .iter()
            .position(|m| *m == method)
            .unwrap_or(usize::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_runs_cheap_methods_first_and_every_method_once() {
        let order = MethodSelection::All.run_order();
        assert_eq!(order.len(), Method::ALL.len());
        assert!(order.windows(2).all(|w| w[0].cost() <= w[1].cost()));
        assert_eq!(order[0], Method::Cam);
        assert_eq!(order.last(), Some(&Method::Rise));
        let mut sorted = order.clone();
        sorted.sort_by_key(|m| MethodSelection::display_rank(*m));
        assert_eq!(sorted, Method::ALL);
        assert_eq!(
            MethodSelection::One(Method::GradCam).run_order(),
            vec![Method::GradCam]
        );
    }
}
