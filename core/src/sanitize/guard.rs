//! The cost bound of the sanitizer, counted on what html5ever builds.
//!
//! ammonia parses its input with html5ever into a DOM and then cleans it; it
//! has no hook into that parse. Before handing input to ammonia, this module
//! runs the *same* parser (html5ever, fragment mode, `<div>` context, as
//! ammonia does) into a light tree sink that keeps only the shape of the tree
//! (names, parents, children) and charges every operation the real DOM would
//! do: element and text creation, and the sibling scans that foster
//! parenting and the adoption agency cost in ammonia's DOM. It refuses, and
//! stops feeding the parser, as soon as
//!
//! - an element sits more than [`MAX_NESTING`] levels deep (the tree
//!   builder's per-token work grows with its stack of open elements), or
//! - the work charged passes a budget linear in the input's length
//!   (formatting-element reconstruction and foster parenting can make a
//!   parser do quadratic work on input that nests shallowly).
//!
//! Because it is the real tokenizer and tree builder, comment variants
//! (`<!-->`, `<!--->`, `--!>`), bogus comments, raw-text elements and end
//! tags that close nothing count exactly as the browser-grade parser sees
//! them, not as a second opinion of the syntax would. Input is fed in
//! chunks of [`CHUNK`] bytes so the work after a refusal is bounded too, and
//! the caller's `tick` runs between chunks (the extension checks for query
//! cancellation there).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{ExpandedName, ParseOpts, QualName, local_name, ns};

use super::{MAX_NESTING, TokenTooLong, TooComplex, TooDeep};

/// Bytes fed to the parser between checks of the budget and of the caller's
/// `tick`. Within one chunk the tree can grow by at most about a third of
/// this many elements past a bound before the check sees it.
pub const CHUNK: usize = 1024;

/// Chunks in a row during which the parser may hand the tree nothing. The
/// tokenizer delivers a tag only once it has read all of it, and checks each
/// attribute against all earlier ones of the same tag (quadratic: one 100 KB
/// tag of distinct attributes took 208 ms). A tag, comment or declaration
/// longer than about `SILENT_CHUNKS * CHUNK` bytes is refused, which bounds
/// that work to milliseconds.
pub const SILENT_CHUNKS: usize = 4;

/// The longest stretch of input, in bytes, that may pass without the parser
/// building anything: about the longest tag or comment accepted.
pub const MAX_SILENT_BYTES: usize = SILENT_CHUNKS * CHUNK;

/// Work units allowed per input byte, plus [`BASE_BUDGET`]. An element costs
/// its creation, its insertion and its depth; a text run its insertion and
/// its depth. Ordinary markup, a few levels deep, costs about one unit per byte.
pub const WORK_PER_BYTE: usize = 3;
/// Enough for one straight nest to [`MAX_NESTING`] (the sum of the depths,
/// about 33,000) on top of the input's own allowance.
pub const BASE_BUDGET: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooDeep(TooDeep),
    TooComplex(TooComplex),
    TokenTooLong(TokenTooLong),
}

/// What the guard measured on an accepted input, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub max_depth: usize,
    pub work: usize,
}

/// Inputs this short with this few `<` are accepted without the guard's
/// parse, because it could not refuse them. Fewer than [`SILENT_CHUNKS`]
/// chunks cannot be silent long enough. T tags (each `<` at most one) open
/// at most 3T elements (a tag implies at most two more), text runs number at
/// most T + 1, and re-opening formatting elements clones at most T per
/// token over at most 2T + 1 tokens: at most 2T² + 5T + 1 nodes, none deeper
/// than 3T + 2, each charged at most its depth + 2. For T = 20 that is
/// 901 × 64 = 57,664 units, under [`BASE_BUDGET`], and depth 62 < 256.
/// Most replies are like this, and pay for one parse, not two.
pub const SMALL_BYTES: usize = (SILENT_CHUNKS - 1) * CHUNK;
pub const SMALL_TAGS: usize = 20;

/// Whether `html` is small enough that [`check`] would accept it unparsed.
#[must_use]
pub fn is_small(html: &str) -> bool {
    html.len() <= SMALL_BYTES && html.bytes().filter(|&b| b == b'<').count() <= SMALL_TAGS
}

/// Parses `html` as ammonia will and refuses it if it nests deeper than
/// [`MAX_NESTING`] or costs more than its budget. `tick` runs between chunks.
pub fn check(html: &str, tick: &mut dyn FnMut()) -> Result<Shape, Refusal> {
    let budget = html.len().saturating_mul(WORK_PER_BYTE).saturating_add(BASE_BUDGET);
    let sink = ShapeSink::new(budget);
    let mut parser = html5ever::parse_fragment(
        sink,
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    );
    let mut silent = 0;
    for chunk in chunks(html, CHUNK) {
        tick();
        let before = parser.tokenizer.sink.sink.work.get();
        parser.process(StrTendril::from_slice(chunk));
        let sink = &parser.tokenizer.sink.sink;
        if let Some(refusal) = sink.refusal.get() {
            return Err(refusal);
        }
        silent = if sink.work.get() == before { silent + 1 } else { 0 };
        if silent >= SILENT_CHUNKS {
            return Err(Refusal::TokenTooLong(TokenTooLong { limit: MAX_SILENT_BYTES }));
        }
    }
    tick();
    parser.finish()
}

/// `text` split into pieces of about `size` bytes, on character boundaries.
fn chunks(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

type Handle = Rc<Node>;

/// A node of the light tree: what the parser asks about (element names, the
/// MathML integration flag, template contents) and what the cost depends on
/// (parent, children, depth). Text contents and attributes are not kept.
struct Node {
    name: Option<QualName>,
    is_text: bool,
    mathml_integration_point: bool,
    template_contents: Option<Handle>,
    parent: RefCell<Weak<Node>>,
    children: RefCell<Vec<Handle>>,
    depth: Cell<usize>,
}

impl Node {
    /// A node that is not an element: the document, a comment, a
    /// processing instruction, template contents, or (`is_text`) a text run.
    fn other(is_text: bool) -> Handle {
        Node::with(None, is_text, ElementFlags::default())
    }

    fn with(name: Option<QualName>, is_text: bool, flags: ElementFlags) -> Handle {
        Rc::new(Node {
            name,
            is_text,
            mathml_integration_point: flags.mathml_annotation_xml_integration_point,
            template_contents: flags.template.then(|| Node::other(false)),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            depth: Cell::new(0),
        })
    }
}

struct ShapeSink {
    document: Handle,
    budget: usize,
    work: Cell<usize>,
    max_depth: Cell<usize>,
    refusal: Cell<Option<Refusal>>,
}

impl ShapeSink {
    fn new(budget: usize) -> Self {
        ShapeSink {
            document: Node::other(false),
            budget,
            work: Cell::new(0),
            max_depth: Cell::new(0),
            refusal: Cell::new(None),
        }
    }

    fn charge(&self, units: usize) {
        let work = self.work.get().saturating_add(units);
        self.work.set(work);
        if work > self.budget && self.refusal.get().is_none() {
            self.refusal.set(Some(Refusal::TooComplex(TooComplex { budget: self.budget })));
        }
    }

    /// Sets the depth of `node` and of everything below it (a moved node
    /// brings its subtree along), charging each node its depth. The tree
    /// builder's work for a node is proportional to its stack of open
    /// elements, which is the node's depth: re-opening formatting elements
    /// checks each one against the whole stack (the fuzzer found 3.8 KB of
    /// `<p><b x=N></p>` variants, 241 deep, that cost 10 ms while charging
    /// one unit a node kept them inside the budget).
    fn place(&self, node: &Handle, depth: usize) {
        let mut stack = vec![(node.clone(), depth)];
        while let Some((n, d)) = stack.pop() {
            self.charge(d.max(1));
            n.depth.set(d);
            if !n.is_text && d > self.max_depth.get() {
                self.max_depth.set(d);
                if d > MAX_NESTING && self.refusal.get().is_none() {
                    self.refusal.set(Some(Refusal::TooDeep(TooDeep { limit: MAX_NESTING })));
                }
            }
            if self.refusal.get().is_some() {
                return;
            }
            stack.extend(n.children.borrow().iter().map(|c| (c.clone(), d + 1)));
            if let Some(contents) = &n.template_contents {
                stack.push((contents.clone(), d));
            }
        }
    }

    fn detach(&self, node: &Handle) {
        let Some(parent) = node.parent.replace(Weak::new()).upgrade() else { return };
        let mut children = parent.children.borrow_mut();
        // ammonia's DOM finds the child by a scan of its siblings: charge it.
        self.charge(children.len());
        if let Some(i) = children.iter().position(|c| Rc::ptr_eq(c, node)) {
            children.remove(i);
        }
    }

    fn text_or_node(&self, child: NodeOrText<Handle>) -> Handle {
        match child {
            NodeOrText::AppendNode(node) => node,
            NodeOrText::AppendText(_) => Node::other(true),
        }
    }
}

impl TreeSink for ShapeSink {
    type Handle = Handle;
    type Output = Result<Shape, Refusal>;
    type ElemName<'a> = ExpandedName<'a>;

    fn finish(self) -> Self::Output {
        match self.refusal.get() {
            Some(refusal) => Err(refusal),
            None => Ok(Shape { max_depth: self.max_depth.get(), work: self.work.get() }),
        }
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Handle {
        self.document.clone()
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> ExpandedName<'a> {
        // The tree builder only asks for the names of elements it created,
        // and every element here has one.
        static NONE: std::sync::LazyLock<QualName> = std::sync::LazyLock::new(|| QualName::new(None, ns!(), local_name!("")));
        target.name.as_ref().unwrap_or(&NONE).expanded()
    }

    fn create_element(&self, name: QualName, attrs: Vec<html5ever::Attribute>, flags: ElementFlags) -> Handle {
        self.charge(1 + attrs.len());
        Node::with(Some(name), false, flags)
    }

    fn create_comment(&self, _text: StrTendril) -> Handle {
        self.charge(1);
        Node::other(false)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Handle {
        self.charge(1);
        Node::other(false)
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        self.charge(1);
        if matches!(child, NodeOrText::AppendText(_)) && parent.children.borrow().last().is_some_and(|last| last.is_text) {
            return; // merged into the text before it, as the real DOM does
        }
        let node = self.text_or_node(child);
        self.detach(&node);
        *node.parent.borrow_mut() = Rc::downgrade(parent);
        parent.children.borrow_mut().push(node.clone());
        self.place(&node, parent.depth.get() + 1);
    }

    fn append_based_on_parent_node(&self, element: &Handle, prev_element: &Handle, child: NodeOrText<Handle>) {
        if element.parent.borrow().upgrade().is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _name: StrTendril, _public_id: StrTendril, _system_id: StrTendril) {
        self.charge(1);
    }

    fn get_template_contents(&self, target: &Handle) -> Handle {
        // The tree builder only asks this of templates, which have contents;
        // anything else gets a detached fragment rather than a panic.
        target.template_contents.clone().unwrap_or_else(|| Node::other(false))
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        Rc::ptr_eq(x, y)
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Handle, new_node: NodeOrText<Handle>) {
        self.charge(1);
        let Some(parent) = sibling.parent.borrow().upgrade() else { return };
        let index = {
            let children = parent.children.borrow();
            // The real DOM scans for the sibling's index on every call.
            self.charge(children.len());
            children.iter().position(|c| Rc::ptr_eq(c, sibling)).unwrap_or(children.len())
        };
        if matches!(new_node, NodeOrText::AppendText(_))
            && index > 0
            && parent.children.borrow().get(index - 1).is_some_and(|prev| prev.is_text)
        {
            return;
        }
        let node = self.text_or_node(new_node);
        self.detach(&node);
        *node.parent.borrow_mut() = Rc::downgrade(&parent);
        {
            let mut children = parent.children.borrow_mut();
            let index = children.iter().position(|c| Rc::ptr_eq(c, sibling)).unwrap_or(children.len());
            children.insert(index, node.clone());
        }
        self.place(&node, parent.depth.get() + 1);
    }

    fn add_attrs_if_missing(&self, _target: &Handle, attrs: Vec<html5ever::Attribute>) {
        self.charge(attrs.len());
    }

    fn remove_from_parent(&self, target: &Handle) {
        self.detach(target);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        let moved = std::mem::take(&mut *node.children.borrow_mut());
        for child in &moved {
            *child.parent.borrow_mut() = Rc::downgrade(new_parent);
        }
        let depth = new_parent.depth.get() + 1;
        new_parent.children.borrow_mut().extend(moved.iter().cloned());
        for child in &moved {
            self.place(child, depth);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Handle) -> bool {
        handle.mathml_integration_point
    }
}

impl Drop for ShapeSink {
    /// Tears the tree down without recursion: a refused input can be deep.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut *self.document.children.borrow_mut());
        while let Some(node) = stack.pop() {
            stack.extend(std::mem::take(&mut *node.children.borrow_mut()));
            if let Some(contents) = &node.template_contents {
                stack.extend(std::mem::take(&mut *contents.children.borrow_mut()));
            }
        }
    }
}
