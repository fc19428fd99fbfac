//! Layout files: a good one round-trips; every kind of bad one is refused naming the space.

use valet_lot::{Layout, LayoutProblem, SpaceId};

use crate::GOOD;

fn problems(toml: &str) -> Vec<LayoutProblem> {
    let err = Layout::from_toml(toml).expect_err("the layout must be refused");
    err.problems().to_vec()
}

fn with_polygon(polygon: &str) -> String {
    GOOD.replace("[[10, 10], [60, 10], [60, 60], [10, 60]]", polygon)
}

fn a1() -> SpaceId {
    SpaceId::new("a1")
}

#[test]
fn a_good_layout_loads_and_round_trips_through_toml() {
    let layout = Layout::from_toml(GOOD).unwrap();
    assert_eq!(layout.spaces.len(), 2);
    let again = Layout::from_toml(&layout.to_toml()).unwrap();
    assert_eq!(again, layout);
}

#[test]
fn a_rotated_rect_becomes_four_corners_starting_along_its_h_side() {
    let layout = Layout::from_toml(GOOD).unwrap();
    let quad = layout.spaces[1].quad().unwrap();
    // angle 0: w runs along x (40 wide), h along y (60 high); p0 → p1 goes down the h side, as
    // PKLot's contours run along their rectangles' h sides.
    let expect = [[120.0, 20.0], [120.0, 80.0], [160.0, 80.0], [160.0, 20.0]];
    for (p, e) in quad.iter().zip(expect) {
        assert!((p[0] - e[0]).abs() < 1e-9 && (p[1] - e[1]).abs() < 1e-9, "{quad:?}");
    }
}

#[test]
fn a_polygon_with_a_repeated_corner_has_too_few_points() {
    let p = problems(&with_polygon("[[10, 10], [60, 10], [60, 10], [10, 60]]"));
    assert_eq!(p, vec![LayoutProblem::TooFewPoints { space: a1(), distinct: 3 }]);
    assert!(p[0].to_string().contains("\"a1\""), "{}", p[0]);
}

#[test]
fn a_bow_tie_polygon_is_self_intersecting() {
    let p = problems(&with_polygon("[[10, 10], [60, 60], [60, 10], [10, 50]]"));
    assert_eq!(p, vec![LayoutProblem::SelfIntersecting { space: a1() }]);
}

#[test]
fn corners_on_one_line_have_zero_area() {
    let p = problems(&with_polygon("[[10, 10], [20, 20], [30, 30], [40, 40]]"));
    assert!(matches!(&p[..], [LayoutProblem::ZeroArea { space, .. }] if space == &a1()), "{p:?}");
}

#[test]
fn a_dented_polygon_is_not_convex() {
    let p = problems(&with_polygon("[[10, 10], [60, 10], [30, 20], [10, 60]]"));
    assert_eq!(p, vec![LayoutProblem::NotConvex { space: a1() }]);
}

#[test]
fn a_space_reaching_past_the_frame_is_outside_it() {
    let p = problems(&with_polygon("[[10, 10], [260, 10], [260, 60], [10, 60]]"));
    assert!(
        matches!(&p[..], [LayoutProblem::OutsideFrame { space, point, .. }] if space == &a1() && point[0] == 260.0)
    );
    assert!(p[0].to_string().contains("200×100"), "{}", p[0]);
}

#[test]
fn duplicate_space_ids_are_refused() {
    let doubled = format!(
        "{GOOD}\n[[spaces]]\nid = \"a1\"\nzone = \"A\"\ncamera = \"cam1\"\npolygon = [[70, 10], [90, 10], [90, 30], [70, 30]]\n"
    );
    assert_eq!(problems(&doubled), vec![LayoutProblem::DuplicateId { kind: "space", id: "a1".into() }]);
}

#[test]
fn unknown_zone_level_and_camera_references_are_refused() {
    let bad = GOOD
        .replacen("zone = \"A\"\ncamera = \"cam1\"", "zone = \"Z\"\ncamera = \"cam9\"", 1)
        .replace("id = \"B\"\nlevel = \"L1\"", "id = \"B\"\nlevel = \"L7\"");
    let p = problems(&bad);
    assert!(p.contains(&LayoutProblem::UnknownZone { space: a1(), zone: valet_lot::ZoneId::new("Z") }), "{p:?}");
    assert!(p.contains(&LayoutProblem::UnknownCamera { space: a1(), camera: valet_lot::CameraId::new("cam9") }));
    assert!(p.contains(&LayoutProblem::UnknownLevel {
        zone: valet_lot::ZoneId::new("B"),
        level: valet_lot::LevelId::new("L7")
    }));
}

#[test]
fn a_space_with_no_shape_or_two_shapes_is_refused() {
    let none = GOOD.replace("polygon = [[10, 10], [60, 10], [60, 60], [10, 60]]\n", "");
    assert_eq!(problems(&none), vec![LayoutProblem::NoShape { space: a1() }]);
    let both = GOOD.replace(
        "polygon = [[10, 10], [60, 10], [60, 60], [10, 60]]\n",
        "polygon = [[10, 10], [60, 10], [60, 60], [10, 60]]\nrect = { cx = 30, cy = 30, w = 10, h = 10, angle = 0 }\n",
    );
    assert_eq!(problems(&both), vec![LayoutProblem::TwoShapes { space: a1() }]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = with_polygon("[[10, 10], [60, 60], [60, 10], [10, 50]]").replace("cx = 140", "cx = 190");
    let p = problems(&bad);
    assert_eq!(p.len(), 2, "{p:?}");
}

#[test]
fn a_typo_in_a_key_is_a_toml_error_not_a_silent_default() {
    let err = Layout::from_toml(&GOOD.replace("polygon =", "polygn =")).unwrap_err();
    assert!(err.to_string().contains("polygn"), "{err}");
}
