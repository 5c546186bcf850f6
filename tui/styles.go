package tui

import (
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// colorMode is how much styling the terminal gets.
type colorMode int

const (
	modeColor colorMode = iota // colours and attributes
	modeMono                   // NO_COLOR: attributes (bold, faint, reverse) only
	modePlain                  // no escape codes at all (termenv.Ascii, TERM=dumb, tests)
)

// The palette. Text colours are the 16 basic ANSI colours so the user's
// terminal theme decides the exact shades (light or dark background alike);
// only the heat scale uses fixed colours, down-sampled by lipgloss to what
// the terminal supports.
var (
	colAccent = lipgloss.Color("6") // cyan: titles, focus
	colGood   = lipgloss.Color("2") // green: better than the baseline
	colBad    = lipgloss.Color("1") // red: worse, failures
	colWarn   = lipgloss.Color("3") // yellow: caution
	colDim    = lipgloss.Color("8") // bright black: secondary text
	colBlue   = lipgloss.Color("4")
	colPurple = lipgloss.Color("5")
)

// heatColors runs from worse (red) through neutral (yellow) to better
// (green); heatLevel picks a step.
var heatColors = []lipgloss.Color{
	"#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7b0", "#d9f0a3", "#a6d96a", "#66bd63", "#1a9850",
}

// heatShades are the NO_COLOR stand-ins for heatColors: denser is better.
var heatShades = []string{" ", "·", "·", "░", "░", "▒", "▓", "█", "█"}

// styles are every style the application draws with, built once from the
// colour mode by newStyles.
type styles struct {
	mode colorMode
	r    *lipgloss.Renderer

	title, dim, bold, accent lipgloss.Style
	good, bad, warn          lipgloss.Style
	selected                 lipgloss.Style // the cursor row or cell
	key                      lipgloss.Style // a key name in running text
	toast, errorText         lipgloss.Style
	border, borderFocus      lipgloss.Style
	paneTitle, paneTitleFoc  lipgloss.Style
	tabActive, tabInactive   lipgloss.Style
	tableHeader, sortHeader  lipgloss.Style
	modal                    lipgloss.Style
	checkOn, checkOff        lipgloss.Style
	progressFull, progressBg lipgloss.Style

	chartAxis, chartLabel lipgloss.Style
	seriesThroughput      lipgloss.Style
	seriesBaseline        lipgloss.Style
	seriesRSS, seriesGPU  lipgloss.Style
	seriesTemp, seriesPow lipgloss.Style

	help help.Styles
}

// newStyles builds the styles for a colour profile; noColor keeps the
// attributes and drops the colours. With a renderer (serve: one per SSH
// session) the styles draw for its terminal and profile is its profile.
func newStyles(profile termenv.Profile, noColor bool, r *lipgloss.Renderer) *styles {
	if r == nil {
		r = lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(profile)
	}
	profile = r.ColorProfile()
	r.SetHasDarkBackground(true)
	mode := modeColor
	switch {
	case profile == termenv.Ascii:
		mode = modePlain
	case noColor:
		mode = modeMono
	}
	// fg returns a style with colour c, or without colour in mono mode.
	fg := func(c lipgloss.TerminalColor) lipgloss.Style {
		s := r.NewStyle()
		if mode == modeColor {
			s = s.Foreground(c)
		}
		return s
	}
	s := &styles{mode: mode, r: r}
	s.title = fg(colAccent).Bold(true)
	s.dim = fg(colDim).Faint(mode != modeColor)
	s.bold = r.NewStyle().Bold(true)
	s.accent = fg(colAccent)
	s.good = fg(colGood)
	s.bad = fg(colBad)
	s.warn = fg(colWarn)
	if mode == modeMono {
		s.good = s.good.Bold(true)
		s.bad = s.bad.Underline(true)
	}
	s.selected = r.NewStyle().Reverse(true)
	s.key = fg(colAccent).Bold(true)
	s.toast = fg(colAccent).Bold(true)
	s.errorText = fg(colBad).Bold(true)
	s.border = fg(colDim)
	s.borderFocus = fg(colAccent)
	s.paneTitle = r.NewStyle().Bold(true)
	s.paneTitleFoc = fg(colAccent).Bold(true)
	s.tabActive = fg(colAccent).Bold(true).Reverse(mode == modeMono)
	s.tabInactive = fg(colDim)
	s.tableHeader = r.NewStyle().Bold(true)
	s.sortHeader = fg(colAccent).Bold(true).Underline(mode != modeColor)
	s.modal = r.NewStyle().Border(lipgloss.RoundedBorder()).Padding(0, 1)
	if mode == modeColor {
		s.modal = s.modal.BorderForeground(colAccent)
	}
	s.checkOn = fg(colGood).Bold(true)
	s.checkOff = fg(colDim)
	s.progressFull = fg(colAccent)
	s.progressBg = fg(colDim)

	s.chartAxis = fg(colDim)
	s.chartLabel = fg(colDim)
	s.seriesThroughput = fg(colAccent)
	s.seriesBaseline = fg(colWarn)
	s.seriesRSS = fg(colBlue)
	s.seriesGPU = fg(colPurple)
	s.seriesTemp = fg(colBad)
	s.seriesPow = fg(colWarn)

	s.help = help.Styles{
		Ellipsis:       s.dim,
		ShortKey:       s.key,
		ShortDesc:      s.dim,
		ShortSeparator: s.dim,
		FullKey:        s.key,
		FullDesc:       r.NewStyle(),
		FullSeparator:  s.dim,
	}
	return s
}

// heatLevel maps a position t in [0,1] (0 worse, 1 better) to a step of
// the heat scale.
func heatLevel(t float64) int {
	if t != t { // NaN
		return len(heatColors) / 2
	}
	n := len(heatColors)
	i := int(t*float64(n-1) + 0.5)
	return max(0, min(n-1, i))
}

// heatCell renders a heatmap cell of width w at level i with text centred.
func (s *styles) heatCell(i int, text string, w int, selected bool) string {
	if s.mode == modeColor {
		st := s.r.NewStyle().Background(heatColors[i]).Foreground(lipgloss.Color("#000000"))
		if selected {
			st = st.Bold(true).Underline(true)
		}
		return st.Render(padCenter(text, w))
	}
	// Without colour the padding is a shade glyph: denser is better.
	shade := heatShades[i]
	t := trimPad(text)
	if t == "" {
		return strings.Repeat(shade, w)
	}
	t = " " + t + " "
	side := max(0, w-width(t))
	body := truncate(strings.Repeat(shade, side/2)+t+strings.Repeat(shade, side-side/2), w)
	if selected {
		return s.selected.Render(body)
	}
	return body
}
