//! A flow as SVG: laid out by `layout-rs` and drawn by [`SvgCanvas`], with counts when the
//! backtest report gives them.

use super::{Flow, NodeKind};
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;
use std::fmt::Write as _;

/// Counts drawn on a flow (backtest report): customers per node and per edge, indexes as in
/// the flow.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowCounts {
    pub nodes: Vec<Option<u64>>,
    pub edges: Vec<Option<u64>>,
}

const LINE_HEIGHT: f64 = 16.0;
const CHAR_WIDTH: f64 = 7.0;
/// Edge labels are sized by the layout from their character count times this.
const LABEL_FONT: usize = 7;

/// The flow as a standalone SVG document, laid out top to bottom; with `counts`, each node and
/// edge also shows its number of customers.
pub(crate) fn to_svg(f: &Flow, counts: Option<&FlowCounts>) -> String {
    let mut vg = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for (i, n) in f.nodes.iter().enumerate() {
        let mut lines = n.lines.clone();
        if let Some(c) = counts.and_then(|c| c.nodes.get(i).copied().flatten()) {
            lines.push(format!("{} customers", group_digits(c)));
        }
        let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
        let size = Point::new(
            (longest * CHAR_WIDTH + 28.0).max(70.0),
            lines.len() as f64 * LINE_HEIGHT + 14.0,
        );
        let (fill, stroke) = n.kind.colours();
        let look = StyleAttr::new(
            Color::new(hex(stroke)),
            if n.kind == NodeKind::Trigger { 2 } else { 1 },
            Some(Color::new(hex(fill))),
            if matches!(n.kind, NodeKind::Send | NodeKind::Rule) {
                4
            } else {
                12
            },
            LABEL_FONT,
        );
        let text = lines.join("\n");
        texts.push(text.clone());
        let class = format!("class=\"node {}\"", kind_class(n.kind));
        let element = Element::create_with_properties(
            ShapeKind::new_box(&text),
            look,
            Orientation::LeftToRight,
            size,
            class,
        );
        handles.push(vg.add_node(element));
    }
    let index = |key: &str| f.nodes.iter().position(|n| n.key == key);
    for (i, e) in f.edges.iter().enumerate() {
        let (Some(a), Some(b)) = (index(&e.from), index(&e.to)) else {
            continue;
        };
        let mut label = e.label.clone().unwrap_or_default();
        if let Some(c) = counts.and_then(|c| c.edges.get(i).copied().flatten()) {
            if label.is_empty() {
                label = group_digits(c);
            } else {
                label = format!("{label}\n{}", group_digits(c));
            }
        }
        let look = StyleAttr::new(Color::new(0x6b7280ff), 1, None, 0, LABEL_FONT);
        let arrow = Arrow::new(
            LineEndKind::None,
            LineEndKind::Arrow,
            if e.dashed {
                LineStyleKind::Dashed
            } else {
                LineStyleKind::Normal
            },
            &label,
            &look,
            &None,
            &None,
        );
        vg.add_edge(arrow, handles[a], handles[b]);
    }
    let mut canvas = SvgCanvas {
        node_texts: texts.into_iter().collect(),
        ..SvgCanvas::default()
    };
    vg.do_it(false, false, false, &mut canvas);
    canvas.finish()
}

fn kind_class(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Trigger => "trigger",
        NodeKind::Entry => "entry",
        NodeKind::Wait => "wait",
        NodeKind::WaitFor => "wait-for",
        NodeKind::Send => "send",
        NodeKind::Branch => "branch",
        NodeKind::Split => "split",
        NodeKind::End => "end",
        NodeKind::Rule => "rule",
    }
}

/// `#rrggbb` as the layout crate's RGBA number.
fn hex(colour: &str) -> u32 {
    (u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap_or(0) << 8) | 0xff
}

/// `1234567` as `1 234 567` (a thin space would not survive every font).
pub(crate) fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// journeyd's own SVG backend for the layout crate: sans-serif text, titles in bold, edge
/// labels horizontal on a white background, arrow heads as markers.
#[derive(Default)]
struct SvgCanvas {
    /// The texts of the nodes; any other text is an edge label.
    node_texts: std::collections::HashSet<String>,
    body: String,
    labels: String,
    max: (f64, f64),
    clips: usize,
}

impl SvgCanvas {
    fn grow(&mut self, p: Point, size: Point) {
        self.max.0 = self.max.0.max(p.x + size.x + 8.0);
        self.max.1 = self.max.1.max(p.y + size.y + 8.0);
    }

    fn finish(self) -> String {
        let (w, h) = (self.max.0.ceil(), self.max.1.ceil());
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"journey-flow\" width=\"{w}\" \
             height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\">\n\
             <defs><marker id=\"flow-arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"7\" \
             refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#6b7280\"/></marker>\
             </defs>\n{}{}</svg>\n",
            self.body, self.labels
        )
    }
}

fn web(c: &Color) -> String {
    let s = c.to_web_color();
    // `#rrggbbaa` → `#rrggbb` when opaque, for older viewers.
    match s.strip_suffix("ff") {
        Some(rgb) if rgb.len() == 7 => rgb.to_string(),
        _ => s,
    }
}

impl RenderBackend for SvgCanvas {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        self.grow(xy, size);
        let fill = look.fill_color.map_or("none".to_string(), |c| web(&c));
        let _ = writeln!(
            self.body,
            "<g {}><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{}\" \
             fill=\"{fill}\" stroke=\"{}\" stroke-width=\"{}\"/></g>",
            properties.unwrap_or_default(),
            xy.x,
            xy.y,
            size.x,
            size.y,
            look.rounded,
            web(&look.line_color),
            look.line_width
        );
    }

    fn draw_line(
        &mut self,
        start: Point,
        stop: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.grow(start, Point::zero());
        self.grow(stop, Point::zero());
        let _ = writeln!(
            self.body,
            "<line {} x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" \
             stroke-width=\"{}\"/>",
            properties.unwrap_or_default(),
            start.x,
            start.y,
            stop.x,
            stop.y,
            web(&look.line_color),
            look.line_width
        );
    }

    fn draw_circle(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
    ) {
        self.grow(xy, size);
        let fill = look.fill_color.map_or("none".to_string(), |c| web(&c));
        let _ = writeln!(
            self.body,
            "<ellipse {} cx=\"{:.1}\" cy=\"{:.1}\" rx=\"{:.1}\" ry=\"{:.1}\" fill=\"{fill}\" \
             stroke=\"{}\"/>",
            properties.unwrap_or_default(),
            xy.x,
            xy.y,
            size.x / 2.0,
            size.y / 2.0,
            web(&look.line_color)
        );
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return;
        }
        // An edge label is drawn smaller, on a white box, centred where the layout put it.
        let _ = look;
        let is_edge_label = !self.node_texts.contains(text);
        let (size, height) = if is_edge_label {
            (11.0, 13.0)
        } else {
            (12.5, LINE_HEIGHT)
        };
        let top = xy.y - height * lines.len() as f64 / 2.0;
        let out = if is_edge_label {
            &mut self.labels
        } else {
            &mut self.body
        };
        if is_edge_label {
            let width =
                lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * 6.0 + 8.0;
            let _ = writeln!(
                out,
                "<rect class=\"edge-label\" x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" \
                 height=\"{:.1}\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.9\"/>",
                xy.x - width / 2.0,
                top - 1.0,
                height * lines.len() as f64 + 2.0
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{top:.1}\" font-size=\"{size}\" text-anchor=\"middle\" \
             fill=\"#1f2430\">",
            xy.x
        );
        for (i, line) in lines.iter().enumerate() {
            let weight = if i == 0 && !is_edge_label {
                " font-weight=\"bold\""
            } else if line.ends_with(" customers") || (is_edge_label && i > 0) {
                " font-weight=\"bold\" fill=\"#1d4ed8\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tspan x=\"{:.1}\" dy=\"{}\"{weight}>{}</tspan>",
                xy.x,
                if i == 0 { height * 0.8 } else { height },
                xml_escape(line)
            );
        }
        out.push_str("</text>\n");
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        properties: Option<String>,
        text: &str,
    ) {
        if path.len() < 2 {
            return;
        }
        for p in path {
            self.grow(p.0, Point::zero());
            self.grow(p.1, Point::zero());
        }
        let mut d = format!(
            "M {:.1} {:.1} C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}",
            path[0].0.x,
            path[0].0.y,
            path[0].1.x,
            path[0].1.y,
            path[1].0.x,
            path[1].0.y,
            path[1].1.x,
            path[1].1.y
        );
        for p in path.iter().skip(2) {
            let _ = write!(d, " S {:.1} {:.1}, {:.1} {:.1}", p.0.x, p.0.y, p.1.x, p.1.y);
        }
        let _ = writeln!(
            self.body,
            "<path class=\"edge\" {} d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.3\"{}{}/>",
            properties.unwrap_or_default(),
            web(&look.line_color),
            if dashed {
                " stroke-dasharray=\"5,4\""
            } else {
                ""
            },
            if head.1 {
                " marker-end=\"url(#flow-arrow)\""
            } else {
                ""
            }
        );
        if !text.is_empty() {
            let mid = path[path.len() / 2].1;
            self.draw_text(
                mid,
                text,
                &StyleAttr::new(look.line_color, 1, None, 0, LABEL_FONT),
            );
        }
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded_px: usize) -> ClipHandle {
        self.clips += 1;
        self.clips
    }
}
