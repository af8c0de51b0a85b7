//! The folder methods' answers turned into what the views draw: `folder/embed` into the map,
//! `folder/top` into every unit of a layer over the folder.

use std::path::PathBuf;

use convlens_shared::methods::folder::{EmbedResult, TopResult};

use crate::data::{FolderMap, LayerOverFolder, MapPoint, TopImage, UnitOverFolder, UnitStats};

/// The map of a `folder/embed` answer (of its sampled images, when t-SNE mapped a sample); an
/// error when it holds no map or its per-image rows disagree in length.
pub fn folder_map(result: EmbedResult) -> Result<FolderMap, String> {
    let points = result.points.ok_or("the daemon sent no map points")?;
    let n = result.paths.len();
    let lengths = [
        result.top1_class.len(),
        result.top1_label.len(),
        result.top1_prob.len(),
    ];
    if lengths.iter().any(|l| *l != n) {
        return Err(format!(
            "folder/embed answered {n} paths but {} classes, {} labels and {} probabilities",
            lengths[0], lengths[1], lengths[2]
        ));
    }
    let rows: Vec<usize> = result.mapped.unwrap_or_else(|| (0..n).collect());
    if rows.len() != points.len() || rows.iter().any(|&r| r >= n) {
        return Err(format!(
            "folder/embed answered {n} images but {} points for {} mapped rows",
            points.len(),
            rows.len()
        ));
    }
    let points = rows
        .into_iter()
        .zip(points)
        .map(|(row, [x, y])| MapPoint {
            image: PathBuf::from(&result.paths[row]),
            x: f64::from(x),
            y: f64::from(y),
            class: result.top1_class[row] as usize,
            label: result.top1_label[row].clone(),
            prob: result.top1_prob[row],
        })
        .collect();
    Ok(FolderMap {
        layer: result.report.layer,
        points,
        skipped: result.report.skipped.len(),
    })
}

/// Every unit of a layer over the folder from a `folder/top` answer for all its units; an error
/// when it names a unit the layer does not have.
pub fn layer_over_folder(result: TopResult) -> Result<LayerOverFolder, String> {
    let n = result.report.units.max(result.stats.len());
    let mut units = vec![UnitOverFolder::default(); n];
    let outside = |unit: usize| format!("folder/top answered unit {unit} of a layer of {n} units");
    for s in result.stats {
        let u = units.get_mut(s.unit).ok_or_else(|| outside(s.unit))?;
        u.stats = UnitStats {
            mean: s.mean,
            max: s.max,
            frac_active: s.active_fraction,
        };
    }
    for ranking in result.units {
        let u = units
            .get_mut(ranking.unit)
            .ok_or_else(|| outside(ranking.unit))?;
        u.top = ranking
            .top
            .into_iter()
            .map(|t| TopImage {
                image: PathBuf::from(t.path),
                score: t.value,
            })
            .collect();
    }
    for dead in result.dead {
        units.get_mut(dead).ok_or_else(|| outside(dead))?.dead = true;
    }
    Ok(LayerOverFolder {
        layer: result.report.layer,
        images: result.report.images,
        skipped: result.report.skipped.len(),
        units,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use convlens_shared::methods::folder::{
        FolderUnitStat, PassReport, SkippedFile, TopImage as WireTop, UnitTop,
    };

    fn report(units: usize) -> PassReport {
        PassReport {
            layer: "features.3".into(),
            units,
            positions: [4, 4],
            images: 3,
            skipped: vec![SkippedFile {
                path: "/f/bad.png".into(),
                reason: "truncated".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn every_unit_gets_its_own_statistics_ranking_and_death() {
        // Answers in scrambled unit order: each must land on its own unit.
        let result = TopResult {
            version: 1,
            report: report(3),
            units: vec![
                UnitTop {
                    unit: 2,
                    top: vec![WireTop {
                        path: "/f/b.png".into(),
                        value: 4.0,
                        position: [1, 2],
                    }],
                },
                UnitTop {
                    unit: 0,
                    top: vec![
                        WireTop {
                            path: "/f/a.png".into(),
                            value: 2.0,
                            position: [0, 0],
                        },
                        WireTop {
                            path: "/f/c.png".into(),
                            value: 1.0,
                            position: [3, 3],
                        },
                    ],
                },
            ],
            stats: [
                (1, -0.5, 0.0, 0.0),
                (0, 0.25, 2.0, 2.0 / 3.0),
                (2, 1.0, 4.0, 1.0),
            ]
            .iter()
            .map(|&(unit, mean, max, active_fraction)| FolderUnitStat {
                unit,
                mean,
                max,
                active_fraction,
            })
            .collect(),
            dead: vec![1],
            picture: None,
        };
        let layer = layer_over_folder(result.clone()).unwrap();
        assert_eq!((layer.images, layer.skipped, layer.units.len()), (3, 1, 3));
        for s in &result.stats {
            let u = layer.unit(s.unit).unwrap();
            assert_eq!((u.stats.mean, u.stats.max), (s.mean, s.max));
            assert_eq!(u.stats.frac_active, s.active_fraction);
            assert_eq!(u.dead, result.dead.contains(&s.unit));
        }
        for r in &result.units {
            let names: Vec<String> = layer.units[r.unit]
                .top
                .iter()
                .map(|t| t.image.display().to_string())
                .collect();
            let want: Vec<String> = r.top.iter().map(|t| t.path.clone()).collect();
            assert_eq!(names, want);
        }
        assert!(layer.unit(1).unwrap().top.is_empty());
        assert_eq!(layer.dead(), 1);

        let mut bad = result;
        bad.dead = vec![7];
        assert!(layer_over_folder(bad).unwrap_err().contains("unit 7"));
    }

    #[test]
    fn the_map_keeps_each_image_with_its_point_and_class() {
        let result = EmbedResult {
            version: 2,
            report: report(1280),
            paths: vec!["/f/a.png".into(), "/f/b.png".into()],
            points: Some(vec![[1.0, -2.0], [3.5, 0.25]]),
            mapped: None,
            top1_class: vec![7, 3],
            top1_label: vec!["cock".into(), "tiger shark".into()],
            top1_prob: vec![0.5, 0.75],
            codes: None,
            picture: None,
        };
        let map = folder_map(result.clone()).unwrap();
        assert_eq!(map.layer, "features.3");
        for (i, p) in map.points.iter().enumerate() {
            assert_eq!(p.image, PathBuf::from(&result.paths[i]));
            let [x, y] = result.points.as_ref().unwrap()[i];
            assert_eq!((p.x, p.y), (f64::from(x), f64::from(y)));
            assert_eq!(p.class, result.top1_class[i] as usize);
            assert_eq!(p.label, result.top1_label[i]);
            assert_eq!(p.prob, result.top1_prob[i]);
        }
        let mut short = result.clone();
        short.top1_prob.pop();
        assert!(folder_map(short).is_err());
        let mut sampled = result.clone();
        sampled.points = Some(vec![[9.0, 8.0]]);
        sampled.mapped = Some(vec![1]);
        let map = folder_map(sampled.clone()).unwrap();
        assert_eq!(map.points.len(), 1);
        assert_eq!(map.points[0].image, PathBuf::from("/f/b.png"));
        assert_eq!((map.points[0].x, map.points[0].class), (9.0, 3));
        sampled.mapped = Some(vec![2]);
        assert!(
            folder_map(sampled).is_err(),
            "a mapped row beyond the images"
        );
        let mut none = result;
        none.points = None;
        assert!(folder_map(none).unwrap_err().contains("no map"));
    }
}
