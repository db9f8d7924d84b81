using System.Reflection;

namespace Controller.Tests.Tidy;

/// <summary>
/// Every test class says how it runs (Category Unit, Process, Interop or Campaign), so that
/// <c>dotnet test --filter Category=Unit</c> is the fast suite (README) and nothing slips out of it
/// unlabelled.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TestCategoryTidyTests
{
    private static readonly string[] s_categories = ["Unit", "Process", "Interop", "Campaign"];

    [Fact]
    public void EveryTestClassHasOneCategory()
    {
        var classes = typeof(TestCategoryTidyTests)
            .Assembly.GetTypes()
            .Where(t => t.GetMethods().Any(m => m.GetCustomAttributes().Any(a => a is FactAttribute)))
            .ToList();
        var wrong = classes
            .Select(t =>
                (
                    Type: t,
                    Categories: t.GetCustomAttributesData()
                        .Where(a =>
                            a.AttributeType == typeof(TraitAttribute)
                            && (string?)a.ConstructorArguments[0].Value == "Category"
                        )
                        .Select(a => (string?)a.ConstructorArguments[1].Value)
                        .ToList()
                )
            )
            .Where(c => c.Categories.Count != 1 || !s_categories.Contains(c.Categories[0]))
            .Select(c =>
                $"{c.Type.FullName}: {(c.Categories.Count == 0 ? "no Category trait" : string.Join(", ", c.Categories))}"
            )
            .ToList();

        Assert.True(classes.Count > 50, $"found only {classes.Count} test classes");
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
    }
}
