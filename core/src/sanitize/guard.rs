//! The cost bound of the sanitizer, counted on what html5ever builds.
//!
//! ammonia parses its input with html5ever into its DOM (`RcDom`) and then
//! cleans it. This module does that parse instead (html5ever, fragment mode,
//! `<div>` context, as ammonia does) through a tree sink that wraps ammonia's
//! own `RcDom` and charges every operation the DOM does: element and text
//! creation, depth, the sibling scans of foster parenting and the adoption
//! agency, and the attribute merges of repeated `<html>` tags. The tree it
//! builds goes to ammonia's cleaner (`Builder::clean_dom`, made public in
//! the vendored ammonia, `vendor/ammonia/VERITABLE.md`): one parse, watched.
//! It refuses, and stops feeding the parser, as soon as
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
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use ammonia::rcdom::{Handle, Node, NodeData, RcDom};
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

/// Parses `html` as ammonia does, into ammonia's DOM, and refuses it if it
/// nests deeper than [`MAX_NESTING`] or costs more than its budget. `tick`
/// runs between chunks.
pub fn parse(html: &str, tick: &mut dyn FnMut()) -> Result<(RcDom, Shape), Refusal> {
    let budget = html.len().saturating_mul(WORK_PER_BYTE).saturating_add(BASE_BUDGET);
    let mut parser = html5ever::parse_fragment(
        Guarded::new(budget),
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

/// [`parse`] for what it measured only (tests and benchmarks).
pub fn check(html: &str, tick: &mut dyn FnMut()) -> Result<Shape, Refusal> {
    parse(html, tick).map(|(_, shape)| shape)
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

/// The parent of `node` in ammonia's DOM (its `Cell` holds a weak handle).
fn parent(node: &Handle) -> Option<Handle> {
    let weak = node.parent.take();
    let parent = weak.as_ref().and_then(Weak::upgrade);
    node.parent.set(weak);
    parent
}

fn is_text(node: &Handle) -> bool {
    matches!(node.data, NodeData::Text { .. })
}

/// Template contents (weak, to tell a reused address) and their template.
type TemplateLink = (Weak<Node>, Weak<Node>);

/// ammonia's `RcDom` with a meter: every call is passed on, after charging
/// what it costs the tree builder and the DOM.
struct Guarded {
    dom: RcDom,
    /// The `template` element of each template's contents, by the address
    /// of the contents: the DOM keeps no link upward from contents to their
    /// template, and nesting counts through it.
    templates: RefCell<HashMap<*const Node, TemplateLink>>,
    budget: usize,
    work: Cell<usize>,
    max_depth: Cell<usize>,
    refusal: Cell<Option<Refusal>>,
}

impl Guarded {
    fn new(budget: usize) -> Self {
        Guarded {
            dom: RcDom::default(),
            templates: RefCell::new(HashMap::new()),
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

    /// How many ancestors `node` has, counting through template contents
    /// (which sit at their template's depth): 0 for the document, 1 for the
    /// fragment's `html` element. Walking up costs the depth, which is what
    /// placing a node is charged, so it stays inside the budget.
    fn depth(&self, node: &Handle) -> usize {
        let mut depth = 0;
        let mut at = node.clone();
        loop {
            if let Some(up) = parent(&at) {
                depth += 1;
                at = up;
            } else if let Some(template) = self.template_of(&at) {
                at = template;
            } else {
                return depth;
            }
        }
    }

    /// The template whose contents `node` is, if it is template contents.
    fn template_of(&self, node: &Handle) -> Option<Handle> {
        let templates = self.templates.borrow();
        let (contents, template) = templates.get(&Rc::as_ptr(node))?;
        // The address may have been reused after the template was dropped.
        if contents.upgrade().is_some_and(|c| Rc::ptr_eq(&c, node)) { template.upgrade() } else { None }
    }

    /// Charges `node` and everything below it (a moved node brings its
    /// subtree along) each its depth, `depth` being the node's own. The
    /// tree builder's work for a node is proportional to its stack of open
    /// elements, which is the node's depth: re-opening formatting elements
    /// checks each one against the whole stack (the fuzzer found 3.8 KB of
    /// `<p><b x=N></p>` variants, 241 deep, that cost 10 ms while charging
    /// one unit a node kept them inside the budget).
    fn place(&self, node: &Handle, depth: usize) {
        let mut stack = vec![(node.clone(), depth)];
        while let Some((n, d)) = stack.pop() {
            self.charge(d.max(1));
            if !is_text(&n) && d > self.max_depth.get() {
                self.max_depth.set(d);
                if d > MAX_NESTING && self.refusal.get().is_none() {
                    self.refusal.set(Some(Refusal::TooDeep(TooDeep { limit: MAX_NESTING })));
                }
            }
            if self.refusal.get().is_some() {
                return;
            }
            stack.extend(n.children.borrow().iter().map(|c| (c.clone(), d + 1)));
            if let NodeData::Element { template_contents, .. } = &n.data
                && let Some(contents) = &*template_contents.borrow()
            {
                stack.push((contents.clone(), d));
            }
        }
    }

    /// What taking `node` out of its parent costs: the DOM finds it by a
    /// scan of its siblings.
    fn charge_detach(&self, node: &Handle) {
        if let Some(parent) = parent(node) {
            self.charge(parent.children.borrow().len());
        }
    }
}

impl TreeSink for Guarded {
    type Handle = Handle;
    type Output = Result<(RcDom, Shape), Refusal>;
    type ElemName<'a> = ExpandedName<'a>;

    fn finish(self) -> Self::Output {
        match self.refusal.get() {
            Some(refusal) => Err(refusal),
            None => {
                let shape = Shape { max_depth: self.max_depth.get(), work: self.work.get() };
                Ok((self.dom, shape))
            }
        }
    }

    /// Parse errors do not change the tree; the DOM would keep each one.
    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Handle {
        self.dom.get_document()
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> ExpandedName<'a> {
        self.dom.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<html5ever::Attribute>, flags: ElementFlags) -> Handle {
        self.charge(1 + attrs.len());
        let element = self.dom.create_element(name, attrs, flags);
        if let NodeData::Element { template_contents, .. } = &element.data
            && let Some(contents) = &*template_contents.borrow()
        {
            let link = (Rc::downgrade(contents), Rc::downgrade(&element));
            self.templates.borrow_mut().insert(Rc::as_ptr(contents), link);
        }
        element
    }

    fn create_comment(&self, text: StrTendril) -> Handle {
        self.charge(1);
        self.dom.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> Handle {
        self.charge(1);
        self.dom.create_pi(target, data)
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        self.charge(1);
        let merges = matches!(child, NodeOrText::AppendText(_)) && parent.children.borrow().last().is_some_and(is_text);
        if merges {
            return self.dom.append(parent, child); // into the text before it
        }
        let depth = self.depth(parent) + 1;
        let node = match &child {
            NodeOrText::AppendNode(node) => Some(node.clone()),
            NodeOrText::AppendText(_) => None,
        };
        if let Some(node) = &node {
            self.charge_detach(node);
        }
        self.dom.append(parent, child);
        match node {
            Some(node) => self.place(&node, depth),
            None => self.charge(depth),
        }
    }

    fn append_based_on_parent_node(&self, element: &Handle, prev_element: &Handle, child: NodeOrText<Handle>) {
        if parent(element).is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, name: StrTendril, public_id: StrTendril, system_id: StrTendril) {
        self.charge(1);
        self.dom.append_doctype_to_document(name, public_id, system_id);
    }

    fn get_template_contents(&self, target: &Handle) -> Handle {
        self.dom.get_template_contents(target)
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        Rc::ptr_eq(x, y)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.dom.set_quirks_mode(mode);
    }

    fn append_before_sibling(&self, sibling: &Handle, child: NodeOrText<Handle>) {
        self.charge(1);
        // The tree builder only inserts before a node that has a parent; the
        // DOM would panic otherwise, so such a call is dropped.
        let Some(parent) = parent(sibling) else { return };
        let index = {
            let children = parent.children.borrow();
            // The DOM scans for the sibling's index on every call.
            self.charge(children.len());
            children.iter().position(|c| Rc::ptr_eq(c, sibling)).unwrap_or(children.len())
        };
        let merges = matches!(child, NodeOrText::AppendText(_))
            && index > 0
            && parent.children.borrow().get(index - 1).is_some_and(is_text);
        if merges {
            return self.dom.append_before_sibling(sibling, child);
        }
        let depth = self.depth(&parent) + 1;
        let node = match &child {
            NodeOrText::AppendNode(node) => Some(node.clone()),
            NodeOrText::AppendText(_) => None,
        };
        if let Some(node) = &node {
            self.charge_detach(node);
        }
        self.dom.append_before_sibling(sibling, child);
        match node {
            Some(node) => self.place(&node, depth),
            None => self.charge(depth),
        }
    }

    /// A repeated `<html>` tag merges its attributes into the root element;
    /// the DOM compares them with every attribute already there, so each
    /// merge costs what the element holds (8,000 `<html aN>` tags took
    /// 850 ms before this was charged).
    fn add_attrs_if_missing(&self, target: &Handle, attrs: Vec<html5ever::Attribute>) {
        let existing = match &target.data {
            NodeData::Element { attrs, .. } => attrs.borrow().len(),
            _ => return, // the DOM would panic: only elements have attributes
        };
        self.charge(existing + attrs.len());
        self.dom.add_attrs_if_missing(target, attrs);
    }

    fn remove_from_parent(&self, target: &Handle) {
        self.charge_detach(target);
        self.dom.remove_from_parent(target);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        let moved: Vec<Handle> = node.children.borrow().clone();
        self.dom.reparent_children(node, new_parent);
        let depth = self.depth(new_parent) + 1;
        for child in &moved {
            self.place(child, depth);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Handle) -> bool {
        self.dom.is_mathml_annotation_xml_integration_point(handle)
    }
}
